// The console in a real browser (Debian's chromium through playwright-core),
// against a real `timevault run` started by tests/console/run.sh. The steps
// follow the operators' guide and run in order: each one builds on the state
// the previous left (backups before restores, a PITR before its rollback).
// After every apply, Postgres itself is queried: the console saying
// "succeeded" is not taken as proof.
import {after, before, test} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync, spawn} from 'node:child_process';
import {readFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {chromium} from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const env = (k) => {
  if (!process.env[k]) throw new Error(`${k} is not set: run tests/console/run.sh`);
  return process.env[k];
};
const BASE = env('TV_BASE');
const DB = env('TV_DB');
const SCREENS = env('TV_SCREENS');
const TOKENS = {admin: env('TV_TOKEN_ADMIN'), operator: env('TV_TOKEN_OPERATOR'), viewer: env('TV_TOKEN_VIEWER'), acme: env('TV_TOKEN_ACME')};
// The operator's zone in the browser: not UTC, so local time and UTC differ.
const ZONE = 'Asia/Riyadh';

const sql = (q) => execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', DB, '-c', q], {encoding: 'utf8'}).trim();
// globex's rows in a few numbers: quiz results, risk sum, damaged users.
const globex = () => sql(`SELECT (SELECT count(*) FROM quiz_results WHERE tenant_id = 'globex') || '/' ||
  (SELECT sum(risk_score) FROM users WHERE tenant_id = 'globex') || '/' ||
  (SELECT count(*) FROM users WHERE tenant_id = 'globex' AND department = 'compromised')`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function apiGet(p, token = TOKENS.admin) {
  const res = await fetch(BASE + p, {headers: {Authorization: 'Bearer ' + token}});
  return {status: res.status, body: await res.json()};
}
// Waits until the store's recoverable point is past `iso` (a PITR target needs it).
async function waitRecoverable(iso) {
  // A commit after `iso` (acme's name rewritten as it is), so the store's
  // recoverable point passes it without waiting for an idle-time heartbeat.
  sql("UPDATE tenants SET name = name WHERE tenant_id = 'acme'");
  for (let i = 0; i < 300; ++i) {
    const s = (await apiGet('/v1/session')).body;
    if (s.recoverable_point && Date.parse(s.recoverable_point.time) > Date.parse(iso)) return;
    await sleep(200);
  }
  throw new Error('the recoverable point did not pass ' + iso);
}
// "YYYY-MM-DD" and "HH:MM:SS" of an instant in ZONE.
function zoned(d) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23'}).formatToParts(d).map((p) => [p.type, p.value]));
  return {date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}:${parts.second}`};
}

let browser;
const pages = {};
async function newPage(who, lang) {
  const ctx = await browser.newContext({timezoneId: ZONE, locale: 'en-US', viewport: {width: 1360, height: 900}});
  const page = await ctx.newPage();
  page.on('pageerror', (e) => { throw new Error('console script error: ' + e.message); });
  if (lang) await page.addInitScript((l) => localStorage.setItem('timevault.lang', l), lang);
  await page.goto(BASE + '/');
  await page.getByTestId('token').fill(TOKENS[who]);
  await page.getByTestId('signin-btn').click();
  await page.getByTestId('who').waitFor();
  return page;
}
const shot = (page, name) => page.screenshot({path: path.join(SCREENS, name + '.png'), fullPage: true});
// Clicks a mutating control, checks what the confirmation says, confirms.
async function confirmWith(page, expectTexts) {
  const dlg = page.getByTestId('confirm-dialog');
  await dlg.waitFor({state: 'visible'});
  const text = await dlg.innerText();
  for (const x of expectTexts) assert.ok(text.includes(x), `the confirmation should say "${x}", it says: ${text}`);
  await page.getByTestId('confirm-ok').click();
  await dlg.waitFor({state: 'hidden'});
}
// Waits for the job shown in `box` to finish; returns its state.
async function jobState(box, timeout = 120000) {
  const job = box.locator('[data-testid=job][data-state=succeeded], [data-testid=job][data-state=failed]');
  await job.first().waitFor({timeout});
  const state = await job.first().getAttribute('data-state');
  if (state !== 'succeeded') assert.fail('job failed: ' + (await box.innerText()));
  return state;
}
async function nav(page, screen) {
  await page.getByTestId('nav-' + screen).click();
  await page.getByTestId('screen-' + screen).waitFor();
}

const state = {};

before(async () => {
  browser = await chromium.launch({executablePath: process.env.TV_CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox']});
});
after(async () => { if (browser) await browser.close(); });

test('every console text exists in English and Arabic', () => {
  globalThis.window = {};
  createRequire(import.meta.url)(path.join(here, '../../api/console/i18n.js'));
  const {en, ar} = globalThis.window.TV_I18N;
  assert.deepEqual(Object.keys(ar).sort(), Object.keys(en).sort());
  const src = readFileSync(path.join(here, '../../api/console/app.js'), 'utf8');
  for (const [, key] of src.matchAll(/\bt\('([a-z_0-9.]+)'/g)) {
    if (key.endsWith('.') || key.endsWith('_')) continue;  // completed at run time
    assert.ok(key in en, `app.js uses '${key}', missing from i18n.js`);
  }
});

test('the console is served without a token; the API still needs one', async () => {
  const res = await fetch(BASE + '/');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/html/);
  assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);
  assert.equal((await fetch(BASE + '/console/app.js')).status, 200);
  assert.equal((await fetch(BASE + '/console/nope.js')).status, 404);
  assert.equal((await fetch(BASE + '/v1/session')).status, 401);
  assert.equal((await fetch(BASE + '/livez')).status, 200);
  assert.equal((await fetch(BASE + '/readyz')).status, 200);
  // The preflight, for admins only.
  const check = await apiGet('/v1/check');
  assert.equal(check.status, 200);
  assert.equal(check.body.checks.find((c) => c.name === 'postgres.wal_level').level, 'ok');
  assert.equal(check.body.checks.find((c) => c.name === 'kafka.reachable').level, 'ok');
  assert.equal((await apiGet('/v1/check', TOKENS.viewer)).status, 403);
});

test('run --metrics-listen exports capture and store metrics for Prometheus', async () => {
  // The store refreshes its consumer lag every 5 s: the first scrape may precede it.
  let text = '';
  for (let i = 0; i < 40 && !/^timevault_store_consumer_lag_messages\{/m.test(text); ++i) {
    if (i) await sleep(500);
    const res = await fetch(env('TV_METRICS') + '/metrics');
    assert.equal(res.status, 200);
    text = await res.text();
  }
  const value = (name) => {
    const m = text.match(new RegExp('^' + name + ' (\\S+)$', 'm'));
    assert.ok(m, `${name} is exported`);
    return Number(m[1]);
  };
  assert.ok(value('timevault_capture_events_acked_total') > 0);
  assert.ok(value('timevault_store_messages_consumed_total') > 0);
  assert.ok(value('timevault_store_events') > 0);
  assert.equal(value('timevault_capture_slot_up'), 1);
  assert.ok(value('timevault_capture_slot_wal_retained_bytes') >= 0);
  assert.ok(value('timevault_store_recoverable_point_age_seconds') < 600);
  assert.match(text, /^timevault_store_consumer_lag_messages\{topic="[^"]+",partition="\d+"\} \d+$/m);
  assert.match(text, /^# TYPE timevault_capture_events_produced_total counter$/m);
});

test('Idempotency-Key: a retried POST starts no second job; cancel refuses a finished job', async () => {
  const post = (body, key) => fetch(BASE + '/v1/backups', {method: 'POST', body: JSON.stringify(body),
    headers: {Authorization: 'Bearer ' + TOKENS.admin, 'Content-Type': 'application/json', 'Idempotency-Key': key}});
  const body = {tenant: 'acme', type: 'full', name: 'idempotent'};
  const first = await post(body, 'console-test-key-1');
  assert.equal(first.status, 202);
  const again = await post(body, 'console-test-key-1');
  assert.equal(again.status, 202);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.equal((await again.json()).job_id, (await first.json()).job_id);
  assert.equal((await post({...body, name: 'other'}, 'console-test-key-1')).status, 409);
  assert.equal((await post(body, 'bad key with spaces')).status, 400);
  const jobs = (await apiGet('/v1/jobs?tenant=acme&kind=backup')).body.jobs;
  assert.equal(jobs.length, 1, 'one backup job for two identical requests');
  for (let i = 0; i < 100 && (await apiGet('/v1/jobs/' + jobs[0].id)).body.state !== 'succeeded'; ++i) await sleep(200);
  // Cancellation: only queued jobs (tests/api/jobs_test.cc); a finished one is 409.
  const cancel = (id, token, body) => fetch(BASE + '/v1/jobs/' + id + '/cancel', {method: 'POST', body: JSON.stringify(body),
    headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'}});
  assert.equal((await cancel(jobs[0].id, TOKENS.admin, {confirm: true})).status, 409);
  assert.equal((await cancel(jobs[0].id, TOKENS.admin, {})).status, 400);
  assert.equal((await cancel(jobs[0].id, TOKENS.viewer, {confirm: true})).status, 403);
  assert.equal((await cancel('job-nope', TOKENS.admin, {confirm: true})).status, 404);
});

test('sign-in refuses a wrong token and keeps the token out of the URL', async () => {
  const ctx = await browser.newContext({timezoneId: ZONE});
  const page = await ctx.newPage();
  await page.goto(BASE + '/');
  await shot(page, 'signin');
  await page.getByTestId('token').fill('not-a-token');
  await page.getByTestId('signin-btn').click();
  await page.getByTestId('error').waitFor();
  assert.equal(await page.getByTestId('who').count(), 0);
  await page.getByTestId('token').fill(TOKENS.admin);
  await page.getByTestId('signin-btn').click();
  await page.getByTestId('who').waitFor();
  assert.ok(!page.url().includes(TOKENS.admin));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('timevault.token')), TOKENS.admin);
  assert.equal(await page.evaluate(() => localStorage.getItem('timevault.token')), null);
  await page.getByTestId('signout').click();
  await page.getByTestId('signin').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('timevault.token')), null);
  await ctx.close();
});

test('Backups: create a full and an incremental backup, verify', async () => {
  const page = pages.admin = await newPage('admin');
  await nav(page, 'backups');
  await page.getByTestId('filter-tenant').selectOption('globex');  // the history of one tenant
  state.full_rows = sql("SELECT count(*) FROM quiz_results WHERE tenant_id = 'globex'");
  await page.getByTestId('backup-type').selectOption('full');
  await page.getByTestId('backup-tenant').selectOption('globex');
  await page.getByTestId('backup-name').fill('console-full');
  await page.getByTestId('backup-description').fill('before the accident');
  await page.getByTestId('backup-create').click();
  await confirmWith(page, ['Full', 'globex', 'console-full']);
  await jobState(page.getByTestId('backup-job'));
  await page.locator('[data-testid=backup-row][data-type=full]').waitFor();

  sql("INSERT INTO quiz_results (tenant_id, user_id, score) VALUES ('globex', 1, 88), ('globex', 2, 91)");
  await sleep(1500);
  await page.getByTestId('backup-type').selectOption('incremental');
  await page.getByTestId('backup-name').fill('console-incremental');
  await page.getByTestId('backup-create').click();
  await confirmWith(page, ['Incremental', 'globex', 'the changes since']);
  await jobState(page.getByTestId('backup-job'));
  const incr = page.locator('[data-testid=backup-row][data-type=incremental]');
  await incr.waitFor();
  assert.match(await incr.innerText(), /based on/);
  state.full_id = await page.locator('[data-testid=backup-row][data-type=full]').getAttribute('data-id');

  const full = page.locator(`[data-testid=backup-row][data-id="${state.full_id}"]`);
  await full.getByTestId('verify').click();
  await full.getByText('verified').waitFor();
  const api = (await apiGet('/v1/backups?tenant=globex')).body.backups;
  assert.deepEqual(api.map((b) => b.type).sort(), ['full', 'incremental']);
  assert.equal(api.find((b) => b.type === 'full').name, 'console-full');
  await shot(page, 'backups');
});

test('PITR: preview in the operator\'s zone, execute, roll back in one click', async () => {
  const page = pages.admin;
  await sleep(1300);
  const T = new Date(Math.floor(Date.now() / 1000) * 1000);
  const before = globex();
  await sleep(1300);
  sql("DELETE FROM quiz_results WHERE tenant_id = 'globex'");
  sql("UPDATE users SET risk_score = 100, department = 'compromised' WHERE tenant_id = 'globex'");
  const damaged = globex();
  assert.notEqual(damaged, before);
  await waitRecoverable(new Date().toISOString());

  await nav(page, 'pitr');
  await page.getByTestId('pitr-tenant').selectOption('globex');
  // The tenant's recoverable window, as the API gives it; a moment before
  // its oldest point is refused before any preview.
  const win = (await apiGet('/v1/tenants/globex/window')).body;
  assert.ok(win.oldest && win.newest && Date.parse(win.oldest.time) <= Date.parse(win.newest.time), JSON.stringify(win));
  const winBox = page.getByTestId('pitr-window');
  await page.waitForFunction((o) => document.querySelector('[data-testid=pitr-window]').dataset.oldest === o, win.oldest.time);
  assert.ok(Date.parse(await winBox.getAttribute('data-newest')) >= Date.parse(win.oldest.time));
  assert.match(await winBox.innerText(), /globex/);
  const early = zoned(new Date(Date.parse(win.oldest.time) - 3600e3));
  await page.getByTestId('pitr-date').fill(early.date);
  await page.getByTestId('pitr-time').fill(early.time);
  await page.getByTestId('pitr-preview').click();
  await page.getByTestId('pitr-result').getByText(/before the oldest recoverable point/).waitFor();
  const {date, time} = zoned(T);
  await page.getByTestId('pitr-date').fill(date);
  await page.getByTestId('pitr-time').fill(time);
  const utcShown = await page.getByTestId('pitr-utc').innerText();
  assert.ok(utcShown.includes(ZONE), utcShown);
  assert.ok(utcShown.includes(T.toISOString().slice(0, 19).replace('T', ' ') + ' UTC'), `${utcShown} should show ${T.toISOString()}`);
  await page.getByTestId('pitr-preview').click();
  await page.getByTestId('ops-summary').waitFor();
  const total = Number((await page.getByTestId('ops-total').locator('.value').innerText()).replace(/[^0-9]/g, ''));
  const expected = Number(before.split('/')[0]) + 30;  // the deleted results come back, the 30 users are updated
  assert.equal(total, expected, 'operations in the preview');
  const tables = await page.getByTestId('ops-table-row').allInnerTexts();
  assert.ok(tables.some((x) => x.includes('public.quiz_results')) && tables.some((x) => x.includes('public.users')), tables.join('|'));
  // The row-level sample: users' 30 updates, 10 a page, each showing the
  // damaged value → the value at T; quiz_results' deleted rows come back.
  const users = page.locator('[data-testid=sample-table][data-table="public.users"]');
  await users.locator('[data-testid=sample-row]').nth(9).waitFor();
  assert.equal(await users.locator('[data-testid=sample-row]').count(), 10);
  assert.equal(await users.locator('[data-testid=sample-row][data-op=update]').count(), 10);
  const dept = users.locator('[data-testid=sample-row]').first().locator('[data-col=department]');
  assert.equal(await dept.locator('.before').innerText(), 'compromised');
  assert.match(await dept.locator('.after').innerText(), /^(finance|sales|support)$/);
  await users.getByTestId('sample-more').click();
  await users.locator('[data-testid=sample-row]').nth(19).waitFor();
  const quiz = page.locator('[data-testid=sample-table][data-table="public.quiz_results"] [data-testid=sample-row]');
  await quiz.first().waitFor();
  assert.equal(await quiz.first().getAttribute('data-op'), 'insert');
  await shot(page, 'pitr-preview');

  await page.getByTestId('pitr-execute').click();
  await confirmWith(page, ['globex', 'snapshot', String(expected)]);
  await jobState(page.getByTestId('pitr-job'));
  assert.equal(globex(), before, 'globex after the PITR equals globex at T');
  await page.getByTestId('snapshot-offer').waitFor();
  await shot(page, 'pitr-done');

  await page.getByTestId('rollback-now').click();
  await confirmWith(page, ['globex', 'Put back']);
  await jobState(page.getByTestId('snapshot-offer').locator('xpath=following-sibling::div[1]'));
  assert.equal(globex(), damaged, 'the rollback puts back the rows the PITR replaced');
  state.damaged = damaged;
});

test('Restore: from the full backup, with a review of what changes', async () => {
  const page = pages.admin;
  await waitRecoverable(new Date().toISOString());
  await nav(page, 'backups');
  await page.locator(`[data-testid=backup-row][data-id="${state.full_id}"]`).getByTestId('restore-from').click();
  await page.getByTestId('screen-restore').waitFor();
  assert.equal(await page.getByTestId('restore-backup').inputValue(), state.full_id);
  assert.equal(await page.getByTestId('restore-tenant').isVisible(), false, 'a one-tenant backup asks for no tenant');
  await page.getByTestId('restore-review-btn').click();
  await page.getByTestId('ops-summary').waitFor();
  const total = Number((await page.getByTestId('ops-total').locator('.value').innerText()).replace(/[^0-9]/g, ''));
  assert.equal(total, Number(state.full_rows) + 30, 'operations to reach the full backup');
  assert.doesNotMatch(await page.getByTestId('ops-summary').innerText(), /1970-01-01|Jan 1, 1970|1\/1\/1970/);
  await shot(page, 'restore-review');
  await page.getByTestId('restore-execute').click();
  await confirmWith(page, ['globex', 'console-full', 'snapshot']);
  await jobState(page.getByTestId('restore-job'));
  assert.equal(sql("SELECT count(*) FROM quiz_results WHERE tenant_id = 'globex'"), state.full_rows);
  assert.equal(sql("SELECT count(*) FROM users WHERE tenant_id = 'globex' AND department = 'compromised'"), '0');
  await page.getByTestId('snapshot-offer').waitFor();
  state.restore_snapshot = (await page.getByTestId('snapshot-offer').innerText()).match(/Snapshot (\S+)/)[1];
});

test('Snapshots: inspect, then roll back the restore from the list', async () => {
  const page = pages.admin;
  await nav(page, 'snapshots');
  await page.getByTestId('snapshot-row').first().waitFor();
  assert.ok((await page.getByTestId('snapshot-row').count()) >= 3, 'PITR, rollback and restore snapshots');
  const row = page.locator(`[data-testid=snapshot-row][data-id="${state.restore_snapshot}"]`);
  await row.getByTestId('inspect').click();
  assert.match(await page.getByTestId('snapshot-detail').innerText(), /globex/);
  await shot(page, 'snapshots');
  // The application changes a row the restore wrote: the rollback's own
  // preview names it as a later change it would undo, and asks twice.
  sql("UPDATE users SET department = 'after-restore' WHERE tenant_id = 'globex' AND user_id = (SELECT min(user_id) FROM users WHERE tenant_id = 'globex')");
  await row.getByTestId('rollback').click();
  const pv = page.getByTestId('rollback-preview');
  await pv.waitFor();
  assert.ok(Number(await pv.getAttribute('data-total')) > 0, 'the rollback writes rows');
  assert.equal(await pv.getAttribute('data-reverts'), '1');
  const rev = pv.locator('[data-testid=revert-sample] [data-testid=sample-row]');
  assert.equal(await rev.count(), 1);
  assert.match(await rev.first().innerText(), /after-restore/);
  await shot(page, 'snapshots-rollback-preview');
  // Two confirmations in the one dialog: the second opens as the first closes.
  const dlg = page.getByTestId('confirm-dialog');
  await dlg.waitFor({state: 'visible'});
  const first = await dlg.innerText();
  assert.ok(first.includes(state.restore_snapshot) && first.includes('globex'), first);
  await page.getByTestId('confirm-ok').click();
  await page.waitForFunction(() => document.getElementById('confirm-text').innerText.includes('also undoes'));
  await confirmWith(page, ['also undoes', 'public.users: 1']);
  await jobState(page.getByTestId('snapshot-detail'));
  assert.equal(globex(), state.damaged, 'rolling back the restore puts back the damaged rows, the later change too');
});

test('Recovery Plans: create, edit, test at basic, full and deep', async () => {
  const page = pages.admin;
  await nav(page, 'plans');
  await page.getByTestId('plan-name').fill('globex-console');
  await page.getByTestId('plan-tenant').selectOption('globex');
  await page.getByTestId('plan-rto').fill('30');
  await page.getByTestId('plan-rpo').fill('60');
  await page.getByTestId('plan-full-every').fill('1440');
  await page.getByTestId('plan-incremental-every').fill('600');
  await page.getByTestId('plan-retention').fill('14');
  await page.getByTestId('plan-save').click();
  await confirmWith(page, ['globex-console', 'RTO 30', '14 days']);
  await page.getByTestId('plan-saved').waitFor();
  const row = () => page.locator('[data-testid=plan-row][data-name="globex-console"]');
  await row().waitFor();
  await row().getByTestId('plan-edit').click();
  await page.getByTestId('plan-rto').fill('45');
  await page.getByTestId('plan-save').click();
  await confirmWith(page, ['RTO 45']);
  await page.getByTestId('plan-saved').waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid=plan-row][data-name="globex-console"]')?.innerText.includes('45'));
  const plan = (await apiGet('/v1/plans?tenant=globex')).body.plans.find((p) => p.name === 'globex-console');
  assert.equal(plan.rto_minutes, 45);
  assert.equal(plan.retention_days, 14);

  for (const level of ['basic', 'full', 'deep']) {
    await row().getByTestId('test-' + level).click();
    await confirmWith(page, ['globex-console', 'globex']);
    const report = page.getByTestId('plan-report');
    await jobState(report, 180000);
    const dr = report.getByTestId('dr-report');
    await dr.waitFor();
    assert.equal(await dr.getAttribute('data-passed'), 'true', `${level} test: ${await dr.innerText()}`);
    const checks = await report.locator('[data-testid=dr-check]').evaluateAll((els) => els.map((e) => e.dataset.name));
    assert.ok(checks.includes('verify'), checks.join());
    if (level !== 'basic') assert.ok(checks.includes('checksums'), checks.join());
    if (level === 'deep') assert.ok(checks.includes('rows'), checks.join());
    await report.getByTestId('recommendations').waitFor();
  }
  await shot(page, 'plans-deep-report');
  await row().getByTestId('plan-history').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=history-row]').length >= 3);
});

test('Health: success rate, storage with the 80% line, compliance', async () => {
  const page = pages.admin;
  await nav(page, 'health');
  await page.getByTestId('health-status').waitFor();
  assert.match(await page.getByTestId('success-rate').innerText(), /100%/);
  assert.equal(await page.locator('[data-testid=storage-gauge] .line80').count(), 1);
  const compliance = page.locator('[data-testid=compliance-row]');
  await compliance.first().waitFor();
  assert.match(await compliance.first().innerText(), /globex-console/);
  // Each column header says what it is: no header twice (RPO and RTO were).
  const headers = await page.locator('[data-testid=compliance] th').allInnerTexts();
  assert.equal(new Set(headers).size, headers.length, 'duplicate headers: ' + headers);
  assert.match(await page.getByTestId('last-backup').innerText(), /succeeded/);
  // The recoverable window: from the store's oldest point to the recoverable point.
  const win = page.getByTestId('recoverable-window');
  await win.waitFor();
  const h = (await apiGet('/v1/health')).body;
  assert.equal(await win.getAttribute('data-oldest'), h.store.oldest_point.time);
  await page.waitForTimeout(5500);  // a second sample for the small charts
  await shot(page, 'health');
});

test('Jobs and Audit: every flow is there; the trail verifies', async () => {
  const page = pages.admin;
  await nav(page, 'jobs');
  await page.getByTestId('job-row').first().waitFor();
  const kinds = await page.getByTestId('job-row').evaluateAll((els) => [...new Set(els.map((e) => e.dataset.kind))].sort());
  assert.deepEqual(kinds, ['backup', 'dr_test', 'pitr', 'restore', 'rollback']);
  assert.equal(await page.locator('[data-testid=job-row][data-state=failed]').count(), 0);
  await shot(page, 'jobs');
  await nav(page, 'audit');
  await page.getByTestId('audit-row').first().waitFor();
  await page.getByTestId('audit-actor').fill('console-admin');
  await page.getByTestId('audit-search').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=audit-row]').length >= 10);
  await page.getByTestId('audit-verify').click();
  await page.getByTestId('audit-verify-result').getByText(/intact/).waitFor();
  await shot(page, 'audit');
});

test('Lists come a page at a time: More loads the next page, nothing twice', async () => {
  const page = pages.admin;
  // Jobs in pages of 10: the first page, then More until the end; the rows
  // are the API's whole list, in its order (newest first).
  const all = (await apiGet('/v1/jobs?limit=1000')).body.jobs.map((j) => j.id);
  assert.ok(all.length > 10, 'the earlier steps started more than 10 jobs: ' + all.length);
  await nav(page, 'jobs');
  await page.getByTestId('job-row').first().waitFor();
  await page.getByTestId('page-size').selectOption('10');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=job-row]').length === 10);
  for (let n = 10; n < all.length; n += 10) {
    await page.getByTestId('more').click();
    await page.waitForFunction((want) => document.querySelectorAll('[data-testid=job-row]').length === want, Math.min(all.length, n + 10));
  }
  await page.getByTestId('end-of-list').waitFor();
  const ids = await page.getByTestId('job-row').evaluateAll((els) => els.map((e) => e.dataset.id));
  assert.deepEqual(ids, all);
  await page.waitForTimeout(2500);  // a refresh keeps every row shown
  assert.equal(await page.getByTestId('job-row').count(), all.length);
  // Audit, newest first, pages of 10: seqs strictly decreasing across pages.
  await nav(page, 'audit');
  await page.getByTestId('audit-row').first().waitFor();
  await page.getByTestId('page-size').selectOption('10');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=audit-row]').length === 10);
  await page.getByTestId('more').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=audit-row]').length === 20);
  const seqs = await page.getByTestId('audit-row').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
  for (let i = 1; i < seqs.length; ++i) assert.ok(seqs[i] < seqs[i - 1], 'newest first, no repeat: ' + seqs);
  // The API's order (entries the scheduler appended since sort before seqs[0]).
  const api = (await apiGet('/v1/audit?order=newest&limit=100')).body.entries.map((e) => e.seq);
  const at = api.indexOf(seqs[0]);
  assert.ok(at >= 0);
  assert.deepEqual(seqs, api.slice(at, at + 20));
  await page.getByTestId('page-size').selectOption('50');
});

// Sample names of a Prometheus text exposition ("name{labels} value" lines).
const sampleNames = (text) => new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]));
async function scrapeAll() {
  const run = await (await fetch(env('TV_METRICS') + '/metrics')).text();
  const res = await fetch(BASE + '/metrics', {headers: {Authorization: 'Bearer ' + TOKENS.viewer}});
  assert.equal(res.status, 200);
  return {run, api: await res.text()};
}

test('metrics: job durations as histograms, plans against RPO/RTO, recoverable point age', async () => {
  // Every backup the steps ran is in the histogram: its +Inf bucket is the
  // count (the plan's scheduler may finish one more meanwhile).
  const succeeded = async () => (await apiGet('/v1/jobs?kind=backup&state=succeeded&limit=1000')).body.jobs.length;
  const low = await succeeded();
  const {api} = await scrapeAll();
  const high = await succeeded();
  assert.match(api, /^# TYPE timevault_job_duration_seconds histogram$/m);
  const inf = api.match(/^timevault_job_duration_seconds_bucket\{kind="backup",outcome="succeeded",le="\+Inf"\} (\d+)$/m);
  assert.ok(inf, 'the backup series exists');
  assert.ok(Number(inf[1]) >= low && Number(inf[1]) <= high && low > 0, `${inf[1]} backups in the histogram, ${low}..${high} succeeded`);
  const count = api.match(/^timevault_job_duration_seconds_count\{kind="backup",outcome="succeeded"\} (\d+)$/m);
  assert.equal(count[1], inf[1]);
  // Buckets are cumulative.
  const buckets = [...api.matchAll(/^timevault_job_duration_seconds_bucket\{kind="dr_test",outcome="succeeded",le="([^"]+)"\} (\d+)$/mg)].map((m) => Number(m[2]));
  assert.ok(buckets.length === 13 && buckets.every((v, i) => i === 0 || v >= buckets[i - 1]), buckets.join(','));
  // The plan of the Plans step: its RPO, backup age and a measured RTO.
  assert.match(api, /^timevault_plan_rpo_seconds\{plan="globex-console",tenant="globex"\} \d+/m);
  assert.match(api, /^timevault_plan_backup_age_seconds\{plan="globex-console",tenant="globex"\} [\d.e+-]+$/m);
  assert.match(api, /^timevault_plan_rpo_met\{plan="globex-console",tenant="globex"\} [01]$/m);
  assert.match(api, /^timevault_plan_rto_met\{plan="globex-console",tenant="globex"\} 1$/m);
  const age = Number(api.match(/^timevault_recoverable_point_age_seconds (\S+)$/m)[1]);
  assert.ok(age >= 0 && age < 600, 'recoverable point age ' + age);
});

test('the metrics scrape reuses one Postgres connection', async () => {
  const backend = () => sql("SELECT string_agg(pid || '@' || backend_start, ',') FROM pg_stat_activity WHERE application_name = 'timevault-metrics'");
  await scrapeAll();
  const first = backend();
  assert.ok(first && !first.includes(','), 'one metrics connection: ' + first);
  for (let i = 0; i < 5; ++i) await scrapeAll();
  assert.equal(backend(), first, 'the same backend served every scrape');
});

test('the Grafana dashboard and the alert rules use only metrics that exist', async () => {
  const dashboard = JSON.parse(readFileSync(path.join(here, '../../compose/grafana/dashboards/timevault.json'), 'utf8'));
  const exprs = [];
  const walk = (panels) => { for (const p of panels || []) { for (const t of p.targets || []) exprs.push(t.expr); walk(p.panels); } };
  walk(dashboard.panels);
  assert.ok(exprs.length >= 10);
  const rules = readFileSync(path.join(here, '../../compose/prometheus/alerts.yml'), 'utf8');
  const used = new Set([...exprs.join('\n').matchAll(/\btimevault_[a-zA-Z0-9_]+/g), ...rules.matchAll(/\btimevault_[a-zA-Z0-9_]+/g)].map((m) => m[0]));
  const {run, api} = await scrapeAll();
  const have = new Set([...sampleNames(run), ...sampleNames(api)]);
  const missing = [...used].filter((n) => !have.has(n));
  assert.deepEqual(missing, [], 'used by compose/ but not exported: ' + missing.join(', '));
  assert.ok(used.has('timevault_job_duration_seconds_bucket') && used.has('timevault_plan_rpo_met'), [...used].join(','));
});

test('Jobs: a running PITR is cancelled before it writes', async () => {
  const page = pages.admin;
  const post = async (p, body) => {
    const res = await fetch(BASE + p, {method: 'POST', body: JSON.stringify(body),
      headers: {Authorization: 'Bearer ' + TOKENS.admin, 'Content-Type': 'application/json'}});
    return {status: res.status, body: await res.json()};
  };
  // A PITR with work to do: globex's first user renamed after T.
  await sleep(1100);
  const T = new Date(Math.floor(Date.now() / 1000) * 1000);
  await sleep(1100);
  sql("UPDATE users SET department = 'cancel-test' WHERE tenant_id = 'globex' AND user_id = (SELECT min(user_id) FROM users WHERE tenant_id = 'globex')");
  await waitRecoverable(new Date().toISOString());
  const preview = await post('/v1/pitr/preview', {tenant: 'globex', target_time: T.toISOString()});
  assert.equal(preview.status, 200, JSON.stringify(preview.body));
  assert.ok(preview.body.operations.total >= 1);
  const before = globex() + '/' + sql("SELECT count(*) FROM users WHERE department = 'cancel-test'");
  // Another session holds globex's apply lock: the PITR waits, running, in its lock phase.
  // (psql reads from a pipe: closing it ends the session and frees the lock.)
  const holder = spawn('psql', ['-X', '-q', '-d', DB], {stdio: ['pipe', 'ignore', 'ignore']});
  holder.stdin.write("SELECT pg_advisory_lock(hashtextextended('timevault.tenant:globex', 0));\n");
  try {
    for (let i = 0; i < 100 && sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") === '0'; ++i) await sleep(100);
    const run = await post('/v1/pitr', {plan_id: preview.body.plan_id, confirm: true});
    assert.equal(run.status, 202, JSON.stringify(run.body));
    await nav(page, 'jobs');
    const row = page.locator(`[data-testid=job-row][data-id="${run.body.job_id}"][data-state=running]`);
    await row.waitFor();
    await row.getByTestId('job-cancel').click();
    await confirmWith(page, ['running', run.body.job_id, 'before it writes']);
    await page.locator(`[data-testid=job-row][data-id="${run.body.job_id}"]`).getByTestId('cancel-requested').waitFor();
    await shot(page, 'jobs-cancel-running');
  } finally {
    holder.stdin.end();
  }
  const failed = page.locator(`[data-testid=job-row][data-state=failed]`).filter({hasText: 'cancelled by console-admin'});
  await failed.first().waitFor({timeout: 30000});
  assert.match(await failed.first().innerText(), /nothing changed/);
  assert.equal(globex() + '/' + sql("SELECT count(*) FROM users WHERE department = 'cancel-test'"), before, 'the cancelled PITR changed nothing');
});

test('a viewer sees no control that changes data', async () => {
  const page = await newPage('viewer');
  await nav(page, 'backups');
  await page.getByTestId('backup-row').first().waitFor();
  await page.getByTestId('read-only').waitFor();
  for (const id of ['backup-form', 'verify', 'delete', 'restore-from']) assert.equal(await page.getByTestId(id).count(), 0, id);
  await shot(page, 'viewer-backups');
  await nav(page, 'pitr');
  await page.getByTestId('recoverable').waitFor();
  await page.getByTestId('read-only').waitFor();
  assert.equal(await page.getByTestId('pitr-preview').count(), 0);
  await nav(page, 'snapshots');
  await page.getByTestId('snapshot-row').first().waitFor();
  assert.equal(await page.getByTestId('rollback').count(), 0);
  await nav(page, 'plans');
  await page.getByTestId('plan-row').first().waitFor();
  for (const id of ['plan-form', 'test-basic', 'plan-edit', 'plan-delete']) assert.equal(await page.getByTestId(id).count(), 0, id);
  assert.equal(await page.getByTestId('nav-audit').count(), 0, 'the audit log is for admins');
  await page.context().close();
});

test('a token scoped to acme sees and picks acme only', async () => {
  const page = await newPage('acme');
  await nav(page, 'backups');
  const options = await page.getByTestId('backup-tenant').locator('option').evaluateAll((o) => o.map((x) => x.value));
  assert.deepEqual(options, ['acme']);
  await page.getByTestId('backup-name').fill('acme-full');
  await page.getByTestId('backup-create').click();
  await confirmWith(page, ['acme']);
  await jobState(page.getByTestId('backup-job'));
  await page.locator('[data-testid=backup-row]').first().waitFor();
  const tenants = await page.getByTestId('backup-row').evaluateAll((rows) => rows.map((r) => r.children[3].innerText));
  assert.deepEqual([...new Set(tenants)], ['acme'], 'globex backups are not listed');
  await nav(page, 'snapshots');
  await page.getByTestId('snapshots').waitFor();  // the list has loaded
  assert.equal(await page.getByTestId('snapshot-row').count(), 0, 'globex snapshots are not listed');
  await nav(page, 'jobs');
  await page.getByTestId('job-row').first().waitFor();
  assert.equal((await page.getByTestId('jobs').innerText()).includes('globex'), false);
  await nav(page, 'backups');
  await shot(page, 'tenant-scoped-backups');
  await page.context().close();
});

test('Arabic: right-to-left layout, Arabic words and digits', async () => {
  const page = await newPage('admin', 'ar');
  assert.equal(await page.evaluate(() => document.documentElement.dir), 'rtl');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'ar');
  assert.equal(await page.getByTestId('nav-backups').innerText(), 'النسخ الاحتياطية');
  const navBox = await page.locator('nav.side').boundingBox();
  assert.ok(navBox.x > 1000, `the side bar is on the right in RTL (x=${navBox.x})`);
  await nav(page, 'health');
  await page.getByTestId('health-status').waitFor();
  assert.match(await page.getByTestId('success-rate').innerText(), /[٠-٩]/, 'numbers in Arabic-Indic digits');
  await shot(page, 'ar-health');
  await nav(page, 'pitr');
  await page.getByTestId('pitr-tenant').selectOption('globex');
  await page.getByTestId('pitr-preview').click();
  await page.getByTestId('ops-summary').waitFor();
  await shot(page, 'ar-pitr-preview');
  await nav(page, 'backups');
  await page.getByTestId('backup-row').first().waitFor();
  await shot(page, 'ar-backups');
  // Switching back to English on the page itself.
  await page.getByTestId('lang').selectOption('en');
  assert.equal(await page.evaluate(() => document.documentElement.dir), 'ltr');
  await page.context().close();
});

// A new operator reading Arabic walks every screen of the guide: each is
// there, titled in Arabic, and shows no English text of the console's own
// (every English string of i18n.js that Arabic translates differently is
// looked for in the screen, placeholders cut out; column headers and job
// phases must hold no Latin letter at all). Data the API returns
// (tenant and table names, server messages) is not the console's and may be
// Latin. A screenshot of each screen goes to SCREENS/ar-<screen>.png.
test('Arabic: every screen of the guide is there, with no English of the console left', async () => {
  globalThis.window = globalThis.window || {};
  createRequire(import.meta.url)(path.join(here, '../../api/console/i18n.js'));
  const {en, ar} = globalThis.window.TV_I18N;
  const english = new Set();
  for (const [k, v] of Object.entries(en)) {
    if (ar[k] === v) continue;  // the same in both (units, symbols)
    for (const piece of v.split(/\{[a-z_]+\}/)) {
      const p = piece.trim();
      if (p.length >= 8 && /[A-Za-z]{3,} [A-Za-z]{2,}/.test(p)) english.add(p);
    }
  }
  assert.ok(english.size > 100, `English phrases to look for: ${english.size}`);
  const page = await newPage('admin', 'ar');
  // What each screen must show once loaded (a list row, a form, the status).
  const loaded = {
    backups: 'backup-row', restore: 'screen-restore', pitr: 'pitr-tenant', snapshots: 'screen-snapshots',
    plans: 'screen-plans', health: 'health-status', jobs: 'screen-jobs', audit: 'screen-audit',
  };
  for (const [screen, testid] of Object.entries(loaded)) {
    await nav(page, screen);
    await page.getByTestId(testid).first().waitFor();
    await sleep(800);  // the screen's lists arrive
    const main = page.getByTestId('screen-' + screen);
    assert.equal(await main.locator('h1').first().innerText(), ar['nav.' + screen], `${screen}: the title in Arabic`);
    const text = await main.innerText();
    const left = [...english].filter((p) => text.includes(p));
    assert.deepEqual(left, [], `${screen}: English left in the Arabic console`);
    assert.match(text, /[\u0600-\u06FF]{3,}/, `${screen}: Arabic words`);
    // Column headers and job phases are the console's words too, however short.
    for (const cell of [...await main.locator('th').allInnerTexts(), ...await main.getByTestId('job-phase').allInnerTexts()]) {
      // The acronyms the Arabic edition of the guide keeps (RTO, RPO, UTC, WAL) aside.
      assert.doesNotMatch(cell.replace(/\b(RTO|RPO|UTC|WAL)\b/g, ''), /[A-Za-z]/, `${screen}: "${cell}" is not in Arabic`);
    }
    await shot(page, 'ar-' + screen);
  }
  await page.context().close();
});
