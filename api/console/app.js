// The timevault operators' console: one page, no framework (docs/console.md).
// Every screen reads and writes through the HTTP API (api/openapi.yaml) with
// the bearer token the operator signed in with; the token lives in
// sessionStorage (this tab only) and never in a URL. The DOM is built with
// createElement and textContent only, so nothing the API returns is parsed
// as HTML.
'use strict';
(() => {
  const I18N = window.TV_I18N;
  const TOKEN_KEY = 'timevault.token';
  const LANG_KEY = 'timevault.lang';
  const S = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    session: null,
    lang: localStorage.getItem(LANG_KEY) || 'en',
    timers: [],
    healthSamples: [],
    plans: null,
    pageSize: 50,  // rows a list screen asks the API for at a time
  };
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

  // ---- text, numbers and dates ---------------------------------------------

  function t(key, vars) {
    let s = (I18N[S.lang] && I18N[S.lang][key]) || I18N.en[key] || key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split('{' + k + '}').join(String(v));
    return s;
  }
  // A job's phase (the API's word: lock, load, diff, snapshot, …) in the
  // console's language; one it does not know is shown as the API gives it.
  const phaseText = (p) => (p && I18N.en['phase.' + p] ? t('phase.' + p) : (p || ''));
  // Arabic with Arabic-Indic digits and the Gregorian calendar, whatever the
  // browser's region (CLDR's plain "ar" now writes Latin digits).
  const locale = () => (S.lang === 'ar' ? 'ar-u-nu-arab-ca-gregory' : 'en');
  const num = (n, digits) =>
    n === null || n === undefined ? '—' : new Intl.NumberFormat(locale(), {maximumFractionDigits: digits ?? 2}).format(n);
  const pct = (f) => (f === null || f === undefined ? '—' : new Intl.NumberFormat(locale(), {style: 'percent', maximumFractionDigits: 1}).format(f));
  function bytes(n) {
    if (n === null || n === undefined) return '—';
    const units = ['byte', 'kilobyte', 'megabyte', 'gigabyte', 'terabyte'];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; ++i; }
    return new Intl.NumberFormat(locale(), {style: 'unit', unit: units[i], unitDisplay: 'short', maximumFractionDigits: 1}).format(n);
  }
  function seconds(s) {
    if (s === null || s === undefined) return '—';
    if (Math.abs(s) < 120) return new Intl.NumberFormat(locale(), {style: 'unit', unit: 'second', unitDisplay: 'short', maximumFractionDigits: 2}).format(s);
    if (Math.abs(s) < 7200) return new Intl.NumberFormat(locale(), {style: 'unit', unit: 'minute', unitDisplay: 'short', maximumFractionDigits: 1}).format(s / 60);
    return new Intl.NumberFormat(locale(), {style: 'unit', unit: 'hour', unitDisplay: 'short', maximumFractionDigits: 1}).format(s / 3600);
  }
  // A time in the operator's zone, in the console's language.
  function localTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return new Intl.DateTimeFormat(locale(), {dateStyle: 'medium', timeStyle: 'medium', timeZone: zone}).format(d);
  }
  // The same instant in UTC, ISO-like (what the API and logs speak).
  function utcTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    // Isolated left-to-right (U+2066 … U+2069), so it reads the same in Arabic.
    return isNaN(d) ? iso : '\u2066' + d.toISOString().replace('.000Z', 'Z').replace('T', ' ').replace('Z', ' UTC') + '\u2069';
  }
  // A time cell: the local time, with the UTC time under it.
  function timeCell(iso) {
    if (!iso) return h('span', {}, '—');
    return h('span', {title: iso}, localTime(iso), h('br'), h('span', {class: 'utc'}, utcTime(iso)));
  }

  // ---- DOM -----------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'testid') el.dataset.testid = v;
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const clear = (el) => { while (el.firstChild) el.firstChild.remove(); return el; };
  const badge = (state, text) => h('span', {class: 'badge ' + state}, text ?? t('state.' + state));
  const errorBox = (e) => h('div', {class: 'error-box', role: 'alert', testid: 'error'}, e instanceof Error ? e.message : String(e));
  function field(label, input) { return h('label', {class: 'field'}, label, input); }
  function select(attrs, options, value) {
    const s = h('select', attrs, options.map(([v, label]) => h('option', {value: v}, label)));
    if (value !== undefined) s.value = value;
    return s;
  }
  function table(headers, rows, testid) {
    return h('table', {testid},
      h('thead', {}, h('tr', {}, headers.map((x) => (typeof x === 'string' ? h('th', {}, x) : h('th', {class: x.cls}, x.text))))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', {colspan: headers.length, class: 'note'}, t('common.none')))));
  }

  // ---- the API -------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }
  // A random Idempotency-Key (getRandomValues works on plain http too).
  const newKey = () => Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
  async function api(method, path, body) {
    const init = {method, headers: {Authorization: 'Bearer ' + S.token}, cache: 'no-store'};
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    // Every POST carries an Idempotency-Key; when the connection fails it is
    // sent again once with the same key, so the server runs it at most once.
    if (method === 'POST') init.headers['Idempotency-Key'] = newKey();
    let res;
    for (let attempt = 0; !res; ++attempt) {
      try {
        res = await fetch(path, init);
      } catch (e) {
        if (method !== 'POST' || attempt > 0) throw new ApiError(0, 'network', t('error.network'));
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) {
      if (res.status === 401 && S.session) { signOut(t('error.expired')); }
      const err = data && data.error ? data.error : {code: 'http_' + res.status, message: text || res.statusText};
      throw new ApiError(res.status, err.code, t('error.http', {status: res.status, message: err.message}));
    }
    return data;
  }
  const enc = encodeURIComponent;

  // ---- paged lists -----------------------------------------------------------

  // The API's lists come a page at a time (?limit=, ?cursor= and the
  // response's next_cursor; docs/api.md "Lists"). A list screen shows the
  // first page and a "More" button fetching the next one.
  const PAGE_SIZES = [10, 25, 50, 100];
  async function fetchPage(path, params, key, cursor, limit) {
    const q = new URLSearchParams(params || {});
    q.set('limit', String(limit || S.pageSize));
    if (cursor) q.set('cursor', cursor);
    const r = await api('GET', path + '?' + q);
    return {items: r[key] || [], next: r.next_cursor || null};
  }
  // Every item of a list, following the cursors (for pickers that offer them all).
  async function fetchAll(path, params, key) {
    const out = [];
    let cursor = null;
    do {
      const page = await fetchPage(path, params, key, cursor, 1000);
      out.push(...page.items);
      cursor = page.next;
    } while (cursor);
    return out;
  }
  function pageSizeSelect(onchange) {
    return field(t('common.page_size'), select({testid: 'page-size', onchange: (ev) => { S.pageSize = Number(ev.target.value); onchange(); }},
      PAGE_SIZES.map((n) => [String(n), num(n)]), String(S.pageSize)));
  }
  // "N shown" and, when the API said there is more, the button that loads it.
  function moreControl(shown, next, loadMore) {
    return h('div', {class: 'row more', testid: 'more-row'}, h('span', {class: 'note', testid: 'shown'}, t('common.shown', {n: num(shown)})),
      next ? h('button', {class: 'secondary', testid: 'more', onclick: async (ev) => {
        ev.target.disabled = true;
        try { await loadMore(); } catch (e) { ev.target.parentNode.append(errorBox(e)); }
      }}, t('common.more')) : h('span', {class: 'note', testid: 'end-of-list'}, t('common.end')));
  }

  // ---- roles and tenants ---------------------------------------------------

  const ROLE_RANK = {viewer: 0, operator: 1, admin: 2};
  const can = (role) => S.session && ROLE_RANK[S.session.role] >= ROLE_RANK[role];
  // The tenants this token may pick: its list, or every tenant the store holds.
  function tenantChoices(allowEvery) {
    const s = S.session;
    const set = new Set(s.known_tenants);
    for (const x of s.tenants) if (x !== '*') set.add(x);
    const out = [...set].sort().map((x) => [x, x]);
    if (allowEvery && s.all_tenants) out.push(['*', t('common.every_tenant')]);
    return out;
  }
  const tenantLabel = (x) => (x === '*' ? t('common.every_tenant') : x === '' ? t('common.no_tenant') : x);

  // ---- confirmation --------------------------------------------------------

  // Shows what the action will do; resolves true only on the explicit button.
  function confirmAction(title, text, okLabel) {
    const dlg = document.getElementById('confirm');
    document.getElementById('confirm-title').textContent = title;
    const body = clear(document.getElementById('confirm-text'));
    for (const line of [].concat(text)) body.append(h('span', {}, line), h('br'));
    document.getElementById('confirm-ok').textContent = okLabel || t('common.confirm');
    document.getElementById('confirm-cancel').textContent = t('common.cancel');
    return new Promise((resolve) => {
      const done = (v) => () => { dlg.close(); resolve(v); };
      document.getElementById('confirm-ok').onclick = done(true);
      document.getElementById('confirm-cancel').onclick = done(false);
      dlg.oncancel = done(false);
      dlg.showModal();
    });
  }

  // ---- jobs ----------------------------------------------------------------

  // Whether a job can still be cancelled: queued, a running restore, PITR
  // or rollback that has not reached its snapshot (from there it writes and
  // commits whole), or a running backup or DR test (they keep nothing until
  // they finish). The API decides; this only hides a button that would 409.
  const LATE_PHASES = ['snapshot', 'apply', 'verify', 'commit', 'done'];
  const cancellable = (j) => j.state === 'queued' || (j.state === 'running' && !j.cancel_requested_by && (
    (['restore', 'pitr', 'rollback'].includes(j.kind) && !LATE_PHASES.includes(j.phase)) ||
    (['backup', 'dr_test'].includes(j.kind) && j.phase !== 'done')));
  // Asks to cancel `j` after confirming; resolves with the API's record or null.
  async function cancelJob(j) {
    const vars = {kind: t('job.kind.' + j.kind), id: j.id, tenant: tenantLabel(j.tenant)};
    const ok = await confirmAction(t('jobs.cancel_title'), j.state === 'queued' ? t('jobs.cancel_text', vars) : t('jobs.cancel_running_text', vars), t('jobs.cancel'));
    if (!ok) return null;
    return api('POST', '/v1/jobs/' + enc(j.id) + '/cancel', {confirm: true});
  }

  function jobView(j) {
    const frac = Math.max(0, Math.min(1, j.progress || 0));
    const bar = h('div', {class: 'progress'}, h('div', {}));
    bar.firstChild.style.width = (j.state === 'succeeded' ? 100 : frac * 100) + '%';
    return h('div', {class: 'job', testid: 'job', 'data-state': j.state, 'data-job-id': j.id},
      h('div', {class: 'row'}, badge(j.state), h('span', {}, t('job.kind.' + j.kind)), h('code', {}, j.id),
        h('span', {class: 'note'}, phaseText(j.phase)), bar,
        j.cancel_requested_by && j.state === 'running' ? h('span', {class: 'note', testid: 'cancel-requested'}, t('jobs.cancel_requested', {name: j.cancel_requested_by})) : null,
        cancellable(j) && j.state === 'running' && can('operator') ? h('button', {class: 'danger', testid: 'job-cancel-live', onclick: async (ev) => {
          ev.target.disabled = true;
          try { await cancelJob(j); } catch (e) { ev.target.parentNode.append(errorBox(e)); }
        }}, t('jobs.cancel')) : null),
      j.error ? errorBox(j.error.message) : null);
  }
  // Polls a job until it finishes, showing it in `box`; resolves with the record.
  async function trackJob(id, box) {
    for (;;) {
      let j;
      try {
        j = await api('GET', '/v1/jobs/' + enc(id));
      } catch (e) {
        clear(box).append(errorBox(e));
        throw e;
      }
      clear(box).append(jobView(j));
      if (j.state === 'succeeded' || j.state === 'failed') return j;
      await new Promise((r) => setTimeout(r, 600));
    }
  }
  // Rolls a snapshot back after confirming; shows the job in `box`.
  // Its own preview first (POST …/rollback/preview): what it would write now,
  // and which of those writes undo changes made since the snapshot's apply;
  // those need a second, explicit confirmation (sent as confirm_reverts).
  async function rollback(snap, box) {
    let pv = null;
    try {
      pv = await api('POST', '/v1/snapshots/' + enc(snap.id) + '/rollback/preview', {});
    } catch (e) {
      // A server without the rollback preview (404/405): confirm as before.
      if (e.status !== 404 && e.status !== 405) { box.append(errorBox(e)); return null; }
    }
    if (pv) {
      const stop = showRollbackPreview(snap, pv, box);
      if (stop) return null;
    }
    const o = pv ? pv.operations : null;
    const ok = await confirmAction(t('rollback.title'), [
      t('rollback.text', {id: snap.id, tenant: tenantLabel(snap.tenant), rows: num(snap.rows ?? 0), time: localTime(snap.created_at)}),
      o ? t('ops.line', {total: num(o.total), insert: num(o.insert), update: num(o.update), delete: num(o.delete)}) : '',
      snap.tables && snap.tables.length ? t('rollback.tables', {tables: snap.tables.join(', ')}) : '',
      t('rollback.safety')], t('rollback.button'));
    if (!ok) return null;
    const body = {confirm: true};
    if (pv && pv.confirm_required) {
      const again = await confirmAction(t('rollback.reverts_title'), [t('rollback.reverts_text', {n: num(pv.reverts)}),
        pv.reverts_by_table.map((x) => x.table + ': ' + num(x.count)).join(', ')], t('rollback.reverts_button'));
      if (!again) return null;
      body.confirm_reverts = pv.reverts_digest;
    }
    try {
      const r = await api('POST', '/v1/snapshots/' + enc(snap.id) + '/rollback', body);
      return await trackJob(r.job_id, box);
    } catch (e) {
      box.append(errorBox(e));
      return null;
    }
  }
  // The rollback's preview in `box`; true when there is nothing to do.
  function showRollbackPreview(snap, pv, box) {
    const o = pv.operations;
    const view = h('div', {testid: 'rollback-preview', 'data-reverts': String(pv.reverts), 'data-total': String(o.total)},
      h('h2', {}, t('rollback.preview_title', {id: snap.id})),
      h('div', {class: 'grid'}, metric(t('ops.total'), num(o.total), null, 'rollback-ops-total'), metric(t('ops.insert'), num(o.insert)),
        metric(t('ops.update'), num(o.update)), metric(t('ops.delete'), num(o.delete)),
        metric(t('rollback.reverts'), pv.reverts_known ? num(pv.reverts) : '—', pv.reverts_known ? t('rollback.reverts_detail') : t('rollback.reverts_unknown'), 'rollback-reverts')),
      table([t('ops.table'), {text: t('ops.insert'), cls: 'num'}, {text: t('ops.update'), cls: 'num'}, {text: t('ops.delete'), cls: 'num'}, {text: t('rollback.reverts'), cls: 'num'}],
        pv.tables.map((x) => h('tr', {testid: 'rollback-table-row'}, h('td', {}, h('code', {}, x.table)), h('td', {class: 'num'}, num(x.operations.insert)),
          h('td', {class: 'num'}, num(x.operations.update)), h('td', {class: 'num'}, num(x.operations.delete)),
          h('td', {class: 'num'}, num((pv.reverts_by_table.find((y) => y.table === x.table) || {count: 0}).count)))), 'rollback-tables'),
      pv.revert_sample.length ? h('div', {testid: 'revert-sample'}, h('h3', {}, t('rollback.sample')),
        h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, t('sample.op')), h('th', {}, t('sample.key')), h('th', {}, t('sample.change')))),
          h('tbody', {}, pv.revert_sample.map((x) => changeRow(x.change))))) : null);
    box.append(view);
    if (o.total !== 0) return false;
    box.append(h('p', {class: 'note', testid: 'rollback-nothing'}, t('rollback.nothing')));
    return true;
  }
  // After an apply job: its snapshot, one click from a rollback.
  function snapshotOffer(job, box) {
    const id = job.result && job.result.snapshot_id;
    if (!id) return;
    const out = h('div', {});
    box.append(h('div', {class: 'ok-box', testid: 'snapshot-offer'},
      t('apply.snapshot', {id}), ' ',
      can('operator') ? h('button', {class: 'secondary', testid: 'rollback-now', onclick: async () => {
        try {
          const snap = await api('GET', '/v1/snapshots/' + enc(id));
          await rollback(snap, out);
        } catch (e) { out.append(errorBox(e)); }
      }}, t('apply.rollback')) : null), out);
  }

  // ---- screens ---------------------------------------------------------------

  const SCREENS = [
    ['backups', 'viewer', screenBackups],
    ['restore', 'viewer', screenRestore],
    ['pitr', 'viewer', screenPitr],
    ['snapshots', 'viewer', screenSnapshots],
    ['plans', 'viewer', screenPlans],
    ['health', 'viewer', screenHealth],
    ['jobs', 'viewer', screenJobs],
    ['audit', 'admin', screenAudit],
  ];

  function readOnlyNote() {
    return can('operator') ? '' : h('p', {class: 'note', testid: 'read-only'}, t('common.read_only', {role: t('role.' + S.session.role)}));
  }

  async function loadPlans() {
    try { S.plans = await fetchAll('/v1/plans', {}, 'plans'); } catch (e) { S.plans = []; }
    return S.plans;
  }
  // The retention a plan applies to a backup of `tenant` (its own plan, or a "*" plan).
  function retentionFor(b) {
    const p = (S.plans || []).find((x) => x.tenant === b.tenant) || (S.plans || []).find((x) => x.tenant === '*');
    if (!p) return null;
    return {plan: p, expires: new Date(new Date(b.created_at).getTime() + p.retention_days * 86400e3).toISOString()};
  }
  const rowCount = (b) => Object.values(b.rows || {}).reduce((a, x) => a + x, 0);

  async function screenBackups(main) {
    main.append(h('h1', {}, t('nav.backups')), readOnlyNote());
    const listBox = h('div', {});
    const fTenant = select({testid: 'filter-tenant'}, [['', t('common.all_tenants')], ...tenantChoices(true)]);
    const fType = select({testid: 'filter-type'}, [['', t('backups.all_types')], ['full', t('backups.full')], ['incremental', t('backups.incremental')]]);
    let backups = [];
    let next = null;
    const filters = () => (fTenant.value ? {tenant: fTenant.value} : {});
    async function refresh() {
      try {
        await loadPlans();
        const page = await fetchPage('/v1/backups', filters(), 'backups');
        backups = page.items;
        next = page.next;
        draw();
      } catch (e) { clear(listBox).append(errorBox(e)); }
    }
    async function more() {
      const page = await fetchPage('/v1/backups', filters(), 'backups', next);
      backups.push(...page.items);
      next = page.next;
      draw();
    }
    function draw() {
      const rows = backups.filter((b) => !fType.value || b.type === fType.value).map((b) => {
        const ret = retentionFor(b);
        const out = h('td', {});
        const actions = h('td', {class: 'actions-cell'});
        if (can('operator')) {
          actions.append(
            h('button', {class: 'secondary', testid: 'verify', onclick: async () => {
              clear(out).append(h('span', {class: 'note'}, t('backups.verifying')));
              try {
                const v = await api('POST', '/v1/backups/' + enc(b.id) + '/verify');
                clear(out).append(v.verified ? badge('ok', t('backups.verified')) : h('span', {}, badge('failed', t('backups.damaged')), ' ', v.problem || ''));
              } catch (e) { clear(out).append(errorBox(e)); }
            }}, t('backups.verify')),
            h('button', {class: 'secondary', testid: 'restore-from', onclick: () => go('restore', {backup: b.id})}, t('backups.restore')),
            h('button', {class: 'danger', testid: 'delete', onclick: async () => {
              const ok = await confirmAction(t('backups.delete_title'), [
                t('backups.delete_text', {name: b.name || b.id, id: b.id, type: t('backups.' + b.type), tenant: tenantLabel(b.tenant)}),
                ret ? t('backups.delete_retention', {plan: ret.plan.name, days: num(ret.plan.retention_days), date: localTime(ret.expires)}) : t('backups.delete_no_plan'),
                t('backups.delete_chain')], t('backups.delete'));
              if (!ok) return;
              try {
                await api('DELETE', '/v1/backups/' + enc(b.id), {confirm: true});
                refresh();
              } catch (e) { clear(out).append(errorBox(e)); }
            }}, t('backups.delete')));
        }
        return h('tr', {testid: 'backup-row', 'data-id': b.id, 'data-type': b.type},
          h('td', {}, h('strong', {}, b.name || '—'), h('br'), h('span', {class: 'note'}, b.description || '')),
          h('td', {}, h('code', {}, b.id), b.base_id ? h('div', {class: 'note'}, t('backups.based_on'), ' ', h('code', {}, b.base_id)) : null),
          h('td', {}, t('backups.' + b.type)), h('td', {}, tenantLabel(b.tenant)),
          h('td', {}, timeCell(b.point.time)), h('td', {class: 'num'}, num(rowCount(b))), h('td', {class: 'num'}, bytes(b.bytes)),
          h('td', {}, ret ? localTime(ret.expires) : '—'), out, actions);
      });
      clear(listBox).append(table([t('backups.name'), t('common.id'), t('backups.type'), t('common.tenant'), t('backups.point'),
        {text: t('backups.rows'), cls: 'num'}, {text: t('backups.size'), cls: 'num'}, t('backups.expires'), t('common.result'), ''], rows, 'backups'),
      moreControl(backups.length, next, more));
    }
    fTenant.onchange = refresh;
    fType.onchange = draw;

    if (can('operator')) {
      const type = select({testid: 'backup-type'}, [['full', t('backups.full')], ['incremental', t('backups.incremental')]]);
      const tenant = select({testid: 'backup-tenant'}, tenantChoices(true));
      const name = h('input', {testid: 'backup-name', required: true});
      const desc = h('input', {testid: 'backup-description', size: 40});
      const base = select({testid: 'backup-base'}, []);
      const baseField = field(t('backups.base'), base);
      const jobBox = h('div', {testid: 'backup-job'});
      const fillBase = () => {
        clear(base).append(h('option', {value: ''}, t('backups.base_newest')),
          backups.filter((b) => b.tenant === tenant.value).map((b) => h('option', {value: b.id}, (b.name || b.id) + ' · ' + localTime(b.point.time))));
        baseField.hidden = type.value !== 'incremental';
      };
      type.onchange = fillBase;
      tenant.onchange = fillBase;
      const form = h('form', {class: 'inline', testid: 'backup-form', onsubmit: async (ev) => {
        ev.preventDefault();
        const body = {tenant: tenant.value, type: type.value};
        if (name.value.trim()) body.name = name.value.trim();
        if (desc.value.trim()) body.description = desc.value.trim();
        if (type.value === 'incremental' && base.value) body.base = base.value;
        const baseText = type.value === 'incremental' ? t('backups.create_base', {base: base.value || t('backups.base_newest')}) : '';
        const ok = await confirmAction(t('backups.create_title'), [
          t('backups.create_text', {type: t('backups.' + type.value), tenant: tenantLabel(tenant.value), name: body.name || '—'}), baseText,
          t('backups.create_note')], t('backups.create'));
        if (!ok) return;
        try {
          const r = await api('POST', '/v1/backups', body);
          const j = await trackJob(r.job_id, jobBox);
          if (j.state === 'succeeded') { name.value = ''; desc.value = ''; refresh(); }
        } catch (e) { jobBox.append(errorBox(e)); }
      }},
      field(t('backups.type'), type), field(t('common.tenant'), tenant), field(t('backups.name'), name),
      field(t('backups.description'), desc), baseField, h('button', {type: 'submit', testid: 'backup-create'}, t('backups.create')));
      main.append(h('section', {class: 'card'}, h('h2', {}, t('backups.create_new')), form, jobBox));
      await refresh();
      fillBase();
    } else {
      await refresh();
    }
    main.append(h('section', {class: 'card'}, h('div', {class: 'row'}, h('h2', {}, t('backups.history')),
      field(t('common.tenant'), fTenant), field(t('backups.type'), fType), pageSizeSelect(refresh)), listBox));
  }

  async function screenRestore(main, params) {
    main.append(h('h1', {}, t('nav.restore')), h('p', {class: 'note'}, t('restore.intro')), readOnlyNote());
    if (!can('operator')) return;
    let backups = [];
    try { backups = await fetchAll('/v1/backups', {}, 'backups'); } catch (e) { main.append(errorBox(e)); return; }
    const pick = select({testid: 'restore-backup'}, [['', t('restore.pick')],
      ...backups.map((b) => [b.id, (b.name || b.id) + ' · ' + t('backups.' + b.type) + ' · ' + tenantLabel(b.tenant) + ' · ' + localTime(b.point.time)])],
      params.backup || '');
    const tenant = select({testid: 'restore-tenant'}, tenantChoices(false));
    const tenantField = field(t('common.tenant'), tenant);
    const review = h('div', {testid: 'restore-review'});
    const jobBox = h('div', {testid: 'restore-job'});
    const sync = () => {
      const b = backups.find((x) => x.id === pick.value);
      tenantField.hidden = !b || b.tenant !== '*';
      clear(review); clear(jobBox);
    };
    pick.onchange = sync;
    sync();
    const reviewBtn = h('button', {testid: 'restore-review-btn', onclick: async () => {
      const b = backups.find((x) => x.id === pick.value);
      clear(review); clear(jobBox);
      if (!b) return review.append(errorBox(t('restore.pick')));
      const who = b.tenant === '*' ? tenant.value : b.tenant;
      review.append(h('h2', {}, t('restore.review')),
        table([t('backups.name'), t('backups.type'), t('common.tenant'), t('backups.point'), t('restore.tables')],
          [h('tr', {}, h('td', {}, b.name || b.id), h('td', {}, t('backups.' + b.type)), h('td', {}, tenantLabel(who)), h('td', {}, timeCell(b.point.time)),
            h('td', {}, Object.entries(b.rows || {}).map(([tb, n]) => h('div', {}, h('code', {}, tb), ' ', num(n)))))]));
      // What will change: the store's diff from the live rows to the backup's commit.
      let preview = null;
      try {
        const body = {tenant: who, target_lsn: b.point.lsn};
        if (b.tables && b.tables.length) body.tables = b.tables;
        preview = await api('POST', '/v1/pitr/preview', body);
        // A preview by LSN reports no commit time: the backup's is the same commit.
        if (!Date.parse(preview.target.time)) preview.target.time = b.point.time;
        review.append(h('h2', {}, t('restore.changes')), opsSummary(preview));
      } catch (e) {
        review.append(h('p', {class: 'note'}, t('restore.no_preview', {message: e.message})));
      }
      const ops = preview ? preview.operations : null;
      review.append(h('button', {class: 'danger', testid: 'restore-execute', onclick: async () => {
        const ok = await confirmAction(t('restore.confirm_title'), [
          t('restore.confirm_text', {tenant: tenantLabel(who), name: b.name || b.id, time: localTime(b.point.time)}),
          ops ? t('ops.line', {total: num(ops.total), insert: num(ops.insert), update: num(ops.update), delete: num(ops.delete)}) : '',
          t('apply.snapshot_first')], t('restore.button'));
        if (!ok) return;
        try {
          const body = {backup_id: b.id, confirm: true};
          if (b.tenant === '*') body.tenant = who;
          const r = await api('POST', '/v1/restores', body);
          const j = await trackJob(r.job_id, jobBox);
          if (j.state === 'succeeded') snapshotOffer(j, jobBox);
        } catch (e) { jobBox.append(errorBox(e)); }
      }}, t('restore.button')));
    }}, t('restore.review_btn'));
    main.append(h('section', {class: 'card'}, h('div', {class: 'row'}, field(t('restore.backup'), pick), tenantField, reviewBtn), review, jobBox));
  }

  // Operations of a preview: totals by kind and a table per table.
  function opsSummary(p) {
    const o = p.operations;
    return h('div', {testid: 'ops-summary'},
      h('div', {class: 'grid'},
        metric(t('ops.total'), num(o.total), null, 'ops-total'), metric(t('ops.insert'), num(o.insert)),
        metric(t('ops.update'), num(o.update)), metric(t('ops.delete'), num(o.delete)),
        metric(t('ops.estimated'), seconds(p.estimated_seconds), null, 'ops-estimate'),
        metric(t('ops.target'), localTime(p.target.time), utcTime(p.target.time) + ' · LSN ' + p.target.lsn)),
      h('h2', {}, t('ops.by_table')),
      table([t('ops.table'), {text: t('ops.insert'), cls: 'num'}, {text: t('ops.update'), cls: 'num'}, {text: t('ops.delete'), cls: 'num'}, {text: t('ops.total'), cls: 'num'}],
        p.tables.map((x) => h('tr', {testid: 'ops-table-row'}, h('td', {}, h('code', {}, x.table)), h('td', {class: 'num'}, num(x.operations.insert)),
          h('td', {class: 'num'}, num(x.operations.update)), h('td', {class: 'num'}, num(x.operations.delete)), h('td', {class: 'num'}, num(x.operations.total)))), 'ops-tables'),
      p.plan_id && p.tables.some((x) => x.sampled) ? rowSample(p) : null);
  }

  // The preview's row-level sample (GET /v1/pitr/plans/{id}/changes): per
  // table, what each row is now and what it becomes, a page at a time.
  function rowSample(p) {
    const box = h('div', {testid: 'row-sample'}, h('h2', {}, t('sample.title')), h('p', {class: 'note'}, t('sample.intro')));
    for (const x of p.tables.filter((y) => y.sampled)) box.append(sampleTable(p.plan_id, x));
    return box;
  }
  const cellText = (v) => (v === null || v === undefined ? 'NULL' : String(v));
  // One change: its key, and the columns as before → after (an update shows
  // the columns it changes; an insert the row it brings back; a delete the
  // row it removes).
  function changeRow(c) {
    const cols = c.op === 'update' ? c.changed : Object.keys((c.op === 'insert' ? c.after : c.before) || {});
    const cut = new Set(c.truncated || []);
    return h('tr', {testid: 'sample-row', 'data-op': c.op},
      h('td', {}, badge(c.op === 'delete' ? 'failed' : c.op === 'insert' ? 'ok' : 'warning', t('ops.' + c.op))),
      h('td', {}, h('code', {}, Object.entries(c.key || {}).map(([k, v]) => k + '=' + cellText(v)).join(', '))),
      h('td', {class: 'sample-cols'}, cols.map((col) => h('div', {'data-col': col},
        h('code', {}, col), ': ',
        c.op !== 'insert' ? h('span', {class: 'before'}, cellText(c.before[col])) : null,
        c.op === 'update' ? (S.lang === 'ar' ? ' ← ' : ' → ') : null,
        c.op !== 'delete' ? h('span', {class: 'after'}, cellText(c.after[col])) : null,
        cut.has(col) ? h('span', {class: 'note'}, ' ' + t('sample.truncated')) : null))));
  }
  function sampleTable(planId, x) {
    const body = h('tbody', {});
    const foot = h('div', {class: 'row more'});
    const out = h('div', {class: 'sample', testid: 'sample-table', 'data-table': x.table},
      h('h3', {}, h('code', {}, x.table), ' ', h('span', {class: 'note'}, t('sample.count', {sampled: num(x.sampled), total: num(x.operations.total)}))),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, t('sample.op')), h('th', {}, t('sample.key')), h('th', {}, t('sample.change')))), body), foot);
    async function load(cursor) {
      const q = new URLSearchParams({table: x.table, limit: '10'});
      if (cursor) q.set('cursor', cursor);
      clear(foot);
      try {
        const page = await api('GET', '/v1/pitr/plans/' + enc(planId) + '/changes?' + q);
        for (const c of page.changes) body.append(changeRow(c));
        if (page.next_cursor) foot.append(h('button', {class: 'secondary', testid: 'sample-more', onclick: () => load(page.next_cursor)}, t('common.more')));
      } catch (e) { foot.append(errorBox(e)); }
    }
    load(null);
    return out;
  }
  function metric(label, value, sub, testid) {
    return h('div', {class: 'metric', testid}, h('div', {class: 'label'}, label), h('div', {class: 'value'}, value), sub ? h('div', {class: 'sub'}, sub) : null);
  }

  // "YYYY-MM-DD" + "HH:MM[:SS]" in the operator's zone -> Date.
  function localInputToDate(date, time) {
    const [y, mo, d] = date.split('-').map(Number);
    const [hh, mm, ss] = (time || '00:00').split(':').map(Number);
    return new Date(y, mo - 1, d, hh, mm, ss || 0);
  }
  const pad = (n) => String(n).padStart(2, '0');

  async function screenPitr(main) {
    main.append(h('h1', {}, t('nav.pitr')), h('p', {class: 'note'}, t('pitr.intro')), readOnlyNote());
    try { S.session = await api('GET', '/v1/session'); } catch (e) { /* keep the one from sign-in */ }
    const rp = S.session.recoverable_point;
    main.append(h('p', {testid: 'recoverable'}, t('pitr.recoverable'), ' ', rp ? timeCell(rp.time) : t('pitr.none_yet')));
    if (!can('operator')) return;
    // Default target: the newest recoverable moment (to the second), else now.
    const now = rp ? new Date(Math.floor(Date.parse(rp.time) / 1000) * 1000) : new Date();
    const tenant = select({testid: 'pitr-tenant'}, tenantChoices(false));
    const date = h('input', {type: 'date', testid: 'pitr-date', value: `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`});
    const time = h('input', {type: 'time', step: 1, testid: 'pitr-time', value: `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`});
    const tables = h('input', {testid: 'pitr-tables', placeholder: 'public.users, public.orders', size: 30});
    const utc = h('div', {class: 'utc', testid: 'pitr-utc'});
    const showUtc = () => {
      const d = localInputToDate(date.value, time.value);
      utc.textContent = isNaN(d) ? '' : t('pitr.zone', {zone}) + ' = ' + utcTime(d.toISOString());
    };
    date.oninput = showUtc; time.oninput = showUtc; showUtc();
    const result = h('div', {testid: 'pitr-result'});
    const jobBox = h('div', {testid: 'pitr-job'});
    // The tenant's recoverable window: the oldest and newest point a PITR can target.
    const windowBox = h('div', {class: 'note', testid: 'pitr-window'});
    let win = null;
    async function loadWindow() {
      win = null;
      clear(windowBox);
      try { win = await api('GET', '/v1/tenants/' + enc(tenant.value) + '/window'); } catch (e) { return windowBox.append(errorBox(e)); }
      windowBox.dataset.oldest = win.oldest ? win.oldest.time : '';
      windowBox.dataset.newest = win.newest ? win.newest.time : '';
      windowBox.append(t('pitr.window', {tenant: tenant.value}), ' ',
        win.oldest && win.newest ? h('span', {}, timeCell(win.oldest.time), ' → ', timeCell(win.newest.time)) : t('pitr.none_yet'),
        win.gaps && win.gaps.length ? h('div', {testid: 'pitr-window-gaps'}, t('pitr.window_gaps', {n: num(win.gaps.length)})) : null);
      const day = (iso) => { const x = new Date(iso); return `${x.getFullYear()}-${pad(x.getMonth() + 1)}-${pad(x.getDate())}`; };
      if (win.oldest) date.min = day(win.oldest.time);
      if (win.newest) date.max = day(win.newest.time);
    }
    tenant.addEventListener('change', loadWindow);
    const previewBtn = h('button', {testid: 'pitr-preview', onclick: async () => {
      clear(result); clear(jobBox);
      const d = localInputToDate(date.value, time.value);
      if (isNaN(d)) return result.append(errorBox(t('pitr.bad_time')));
      // Outside the window the API refuses too; say so before asking it.
      if (win && win.oldest && d.getTime() < Math.floor(Date.parse(win.oldest.time) / 1000) * 1000) {
        return result.append(errorBox(t('pitr.before_window', {oldest: localTime(win.oldest.time)})));
      }
      const body = {tenant: tenant.value, target_time: d.toISOString()};
      const list = tables.value.split(',').map((x) => x.trim()).filter(Boolean);
      if (list.length) body.tables = list;
      let p;
      try { p = await api('POST', '/v1/pitr/preview', body); } catch (e) { return result.append(errorBox(e)); }
      result.append(h('h2', {}, t('pitr.preview_of', {tenant: p.tenant})), opsSummary(p),
        h('button', {class: 'danger', testid: 'pitr-execute', disabled: p.operations.total === 0 ? true : null, onclick: async () => {
          const ok = await confirmAction(t('pitr.confirm_title'), [
            t('pitr.confirm_text', {tenant: p.tenant, time: localTime(p.target.time), utc: utcTime(p.target.time)}),
            t('ops.line', {total: num(p.operations.total), insert: num(p.operations.insert), update: num(p.operations.update), delete: num(p.operations.delete)}),
            t('pitr.confirm_tables', {tables: p.tables.map((x) => x.table).join(', ') || '—'}),
            t('apply.snapshot_first')], t('pitr.execute'));
          if (!ok) return;
          try {
            const r = await api('POST', '/v1/pitr', {plan_id: p.plan_id, confirm: true});
            const j = await trackJob(r.job_id, jobBox);
            if (j.state === 'succeeded') snapshotOffer(j, jobBox);
          } catch (e) { jobBox.append(errorBox(e)); }
        }}, t('pitr.execute')),
        p.operations.total === 0 ? h('p', {class: 'note'}, t('pitr.nothing')) : '');
    }}, t('pitr.preview'));
    main.append(h('section', {class: 'card'},
      h('div', {class: 'row'}, field(t('common.tenant'), tenant), field(t('pitr.date'), date), field(t('pitr.time'), time),
        field(t('pitr.tables'), tables), previewBtn), utc, windowBox, result, jobBox));
    await loadWindow();
  }

  async function screenSnapshots(main) {
    main.append(h('h1', {}, t('nav.snapshots')), h('p', {class: 'note'}, t('snapshots.intro')), readOnlyNote());
    const box = h('div', {});
    const detail = h('div', {testid: 'snapshot-detail'});
    let snaps = [];
    let next = null;
    async function refresh() {
      try {
        const page = await fetchPage('/v1/snapshots', {}, 'snapshots');
        snaps = page.items;
        next = page.next;
        draw();
      } catch (e) { clear(box).append(errorBox(e)); }
    }
    async function more() {
      const page = await fetchPage('/v1/snapshots', {}, 'snapshots', next);
      snaps.push(...page.items);
      next = page.next;
      draw();
    }
    main.append(h('section', {class: 'card'}, h('div', {class: 'row'}, pageSizeSelect(refresh)), box, detail));
    await refresh();
    function draw() {
    clear(box).append(table([t('common.id'), t('common.tenant'), t('snapshots.taken'), t('snapshots.reason'), {text: t('backups.rows'), cls: 'num'}, t('restore.tables'), ''],
      snaps.map((s) => h('tr', {testid: 'snapshot-row', 'data-id': s.id},
        h('td', {}, h('code', {}, s.id)), h('td', {}, tenantLabel(s.tenant)), h('td', {}, timeCell(s.created_at)),
        h('td', {}, s.reason, s.source ? h('div', {class: 'note'}, s.source) : null), h('td', {class: 'num'}, num(s.rows)),
        h('td', {}, (s.tables || []).map((x) => h('div', {}, h('code', {}, x)))),
        h('td', {class: 'actions-cell'},
          h('button', {class: 'secondary', testid: 'inspect', onclick: () => {
            clear(detail).append(h('h2', {}, t('snapshots.detail', {id: s.id})),
              table([t('snapshots.field'), t('snapshots.value')], Object.entries(s).map(([k, v]) =>
                h('tr', {}, h('td', {}, k), h('td', {}, typeof v === 'object' ? JSON.stringify(v) : String(v)))), 'snapshot-fields'),
              h('p', {class: 'note'}, t('snapshots.reverts', {rows: num(s.rows ?? 0), absent: num(s.absent ?? 0)})));
          }}, t('snapshots.inspect')),
          can('operator') ? h('button', {class: 'danger', testid: 'rollback', onclick: async () => {
            clear(detail);
            const j = await rollback(s, detail);
            if (j && j.state === 'succeeded') snapshotOffer(j, detail);
          }}, t('rollback.button')) : null))), 'snapshots'),
      moreControl(snaps.length, next, more));
    }
  }

  async function screenPlans(main) {
    main.append(h('h1', {}, t('nav.plans')), h('p', {class: 'note'}, t('plans.intro')), readOnlyNote());
    const listBox = h('div', {});
    const report = h('div', {testid: 'plan-report'});
    let editing = null;
    const inputs = {
      name: h('input', {testid: 'plan-name', required: true}),
      tenant: select({testid: 'plan-tenant'}, tenantChoices(true)),
      rto_minutes: h('input', {type: 'number', min: 1, max: 525600, value: 60, testid: 'plan-rto'}),
      rpo_minutes: h('input', {type: 'number', min: 1, max: 525600, value: 15, testid: 'plan-rpo'}),
      full_backup_every: h('input', {type: 'number', min: 1, max: 525600, value: 1440, testid: 'plan-full-every'}),
      incremental_every: h('input', {type: 'number', min: 0, max: 525600, value: 60, testid: 'plan-incremental-every'}),
      retention_days: h('input', {type: 'number', min: 1, max: 3650, value: 30, testid: 'plan-retention'}),
    };
    const formTitle = h('h2', {}, t('plans.create_new'));
    const formMsg = h('div', {});
    const resetForm = () => {
      editing = null;
      formTitle.textContent = t('plans.create_new');
      inputs.name.value = '';
      clear(formMsg);
    };
    async function refresh() {
      let plans;
      try { plans = await loadPlans(); } catch (e) { return clear(listBox).append(errorBox(e)); }
      clear(listBox).append(table([t('plans.name'), t('common.tenant'), {text: 'RTO', cls: 'num'}, {text: 'RPO', cls: 'num'},
        {text: t('plans.full_every'), cls: 'num'}, {text: t('plans.incremental_every'), cls: 'num'}, {text: t('plans.retention'), cls: 'num'}, t('plans.last_test'), ''],
      plans.map((p) => h('tr', {testid: 'plan-row', 'data-id': p.id, 'data-name': p.name},
        h('td', {}, h('strong', {}, p.name)), h('td', {}, tenantLabel(p.tenant)),
        h('td', {class: 'num'}, t('unit.minutes', {n: num(p.rto_minutes)})), h('td', {class: 'num'}, t('unit.minutes', {n: num(p.rpo_minutes)})),
        h('td', {class: 'num'}, t('unit.minutes', {n: num(p.full_backup_every)})), h('td', {class: 'num'}, p.incremental_every ? t('unit.minutes', {n: num(p.incremental_every)}) : '—'),
        h('td', {class: 'num'}, t('unit.days', {n: num(p.retention_days)})),
        h('td', {}, p.last_test ? h('span', {}, badge(p.last_test.passed ? 'ok' : 'failed', p.last_test.passed ? t('plans.passed') : t('plans.failed')), ' ',
          t('plans.level.' + p.last_test.level), p.last_test.restore_seconds != null ? ' · ' + seconds(p.last_test.restore_seconds) : '') : '—'),
        h('td', {class: 'actions-cell'},
          can('operator') ? ['basic', 'full', 'deep'].map((lv) => h('button', {class: 'secondary', testid: 'test-' + lv, onclick: () => runTest(p, lv)}, t('plans.test_' + lv))) : null,
          h('button', {class: 'secondary', testid: 'plan-history', onclick: () => history(p)}, t('plans.history')),
          can('admin') ? h('button', {class: 'secondary', testid: 'plan-edit', onclick: () => {
            editing = p;
            formTitle.textContent = t('plans.edit', {name: p.name});
            for (const k of Object.keys(inputs)) inputs[k].value = p[k];
            inputs.name.focus();
          }}, t('plans.edit_btn')) : null,
          can('admin') ? h('button', {class: 'danger', testid: 'plan-delete', onclick: async () => {
            const ok = await confirmAction(t('plans.delete_title'), t('plans.delete_text', {name: p.name, tenant: tenantLabel(p.tenant)}), t('plans.delete'));
            if (!ok) return;
            try { await api('DELETE', '/v1/plans/' + enc(p.id), {confirm: true}); refresh(); } catch (e) { listBox.append(errorBox(e)); }
          }}, t('plans.delete')) : null))), 'plans'));
    }
    async function runTest(p, level) {
      const ok = await confirmAction(t('plans.test_title', {level: t('plans.level.' + level)}),
        [t('plans.test_text_' + level, {name: p.name, tenant: tenantLabel(p.tenant)}), t('plans.test_safe')], t('plans.run_test'));
      if (!ok) return;
      clear(report);
      const jobBox = h('div', {});
      report.append(h('h2', {}, t('plans.report_of', {name: p.name, level: t('plans.level.' + level)})), jobBox);
      try {
        const r = await api('POST', '/v1/plans/' + enc(p.id) + '/tests', {level});
        const j = await trackJob(r.job_id, jobBox);
        if (j.state === 'succeeded' && j.result) report.append(drReport(j.result));
        refresh();
      } catch (e) { report.append(errorBox(e)); }
    }
    async function history(p) {
      clear(report).append(h('h2', {}, t('plans.history_of', {tenant: tenantLabel(p.tenant)})));
      try {
        const q = p.tenant === '*' ? {kind: 'dr_test'} : {kind: 'dr_test', tenant: p.tenant};
        const jobs = (await fetchAll('/v1/jobs', q, 'jobs')).filter((j) => j.tenant === p.tenant);
        report.append(table([t('jobs.created'), t('plans.level_col'), t('jobs.state'), t('plans.result'), 'RTO', 'RPO', ''], jobs.map((j) => {
          const r = j.result || {};
          return h('tr', {testid: 'history-row'}, h('td', {}, timeCell(j.created_at)), h('td', {}, r.level ? t('plans.level.' + r.level) : '—'), h('td', {}, badge(j.state)),
            h('td', {}, r.passed === undefined ? '—' : badge(r.passed ? 'ok' : 'failed', r.passed ? t('plans.passed') : t('plans.failed'))),
            h('td', {}, r.rto_met === undefined || r.rto_met === null ? '—' : r.rto_met ? '✓' : '✗'), h('td', {}, r.rpo_met === undefined ? '—' : r.rpo_met ? '✓' : '✗'),
            h('td', {}, j.result ? h('button', {class: 'secondary', onclick: () => { clear(report).append(drReport(j.result)); }}, t('plans.open_report')) : null));
        }), 'history'));
      } catch (e) { report.append(errorBox(e)); }
    }
    if (can('admin')) {
      const form = h('form', {class: 'inline', testid: 'plan-form', onsubmit: async (ev) => {
        ev.preventDefault();
        const body = {name: inputs.name.value.trim(), tenant: inputs.tenant.value};
        for (const k of ['rto_minutes', 'rpo_minutes', 'full_backup_every', 'incremental_every', 'retention_days']) body[k] = Number(inputs[k].value);
        const ok = await confirmAction(editing ? t('plans.save_title') : t('plans.create_title'), [
          t('plans.save_text', {name: body.name, tenant: tenantLabel(body.tenant), rto: num(body.rto_minutes), rpo: num(body.rpo_minutes)}),
          t('plans.save_schedule', {full: num(body.full_backup_every), incremental: body.incremental_every ? num(body.incremental_every) : '—', days: num(body.retention_days)})],
        editing ? t('plans.save') : t('plans.create'));
        if (!ok) return;
        try {
          if (editing) await api('PUT', '/v1/plans/' + enc(editing.id), body); else await api('POST', '/v1/plans', body);
          resetForm();
          formMsg.append(h('div', {class: 'ok-box', testid: 'plan-saved'}, t('plans.saved', {name: body.name})));
          refresh();
        } catch (e) { clear(formMsg).append(errorBox(e)); }
      }},
      field(t('plans.name'), inputs.name), field(t('common.tenant'), inputs.tenant), field(t('plans.rto'), inputs.rto_minutes),
      field(t('plans.rpo'), inputs.rpo_minutes), field(t('plans.full_every_min'), inputs.full_backup_every),
      field(t('plans.incremental_every_min'), inputs.incremental_every), field(t('plans.retention_days'), inputs.retention_days),
      h('button', {type: 'submit', testid: 'plan-save'}, t('plans.save')),
      h('button', {type: 'button', class: 'secondary', onclick: resetForm}, t('common.cancel')));
      main.append(h('section', {class: 'card'}, formTitle, form, formMsg));
    }
    main.append(h('section', {class: 'card'}, listBox), h('section', {class: 'card'}, report));
    await refresh();
  }

  function drReport(r) {
    return h('div', {testid: 'dr-report', 'data-passed': String(!!r.passed)},
      h('div', {class: 'grid'},
        metric(t('plans.result'), r.passed ? t('plans.passed') : t('plans.failed'), t('plans.level.' + r.level), 'dr-passed'),
        metric(t('plans.restore_time'), seconds(r.restore_seconds), r.rto_seconds != null ? t('plans.vs_rto', {rto: seconds(r.rto_seconds)}) + (r.rto_met === false ? ' ✗' : r.rto_met ? ' ✓' : '') : null),
        metric(t('plans.data_age'), seconds(r.data_age_seconds), r.rpo_seconds != null ? t('plans.vs_rpo', {rpo: seconds(r.rpo_seconds)}) + (r.rpo_met ? ' ✓' : ' ✗') : null),
        metric(t('plans.backup'), r.backup_id || '—', r.backup_point ? localTime(r.backup_point.time) : null)),
      h('h2', {}, t('plans.checks')),
      table([t('plans.check'), t('plans.result'), t('plans.detail')], (r.checks || []).map((c) =>
        h('tr', {testid: 'dr-check', 'data-name': c.name, 'data-passed': String(c.passed)}, h('td', {}, c.name),
          h('td', {}, badge(c.passed ? 'ok' : 'failed', c.passed ? t('plans.passed') : t('plans.failed'))), h('td', {}, c.detail))), 'dr-checks'),
      h('h2', {}, t('plans.recommendations')),
      (r.recommendations || []).length ? h('ul', {testid: 'recommendations'}, r.recommendations.map((x) => h('li', {}, x)))
        : h('p', {class: 'note', testid: 'recommendations'}, t('plans.no_recommendations')));
  }

  function sparkline(values, testid) {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 100 30');
    svg.setAttribute('preserveAspectRatio', 'none');
    if (testid) svg.dataset.testid = testid;
    const vs = values.filter((v) => typeof v === 'number');
    if (vs.length >= 2) {
      const max = Math.max(...vs), min = Math.min(...vs), span = max - min || 1;
      const line = document.createElementNS(ns, 'polyline');
      line.setAttribute('points', vs.map((v, i) => `${(i / (vs.length - 1)) * 100},${28 - ((v - min) / span) * 26}`).join(' '));
      svg.append(line);
    }
    return svg;
  }

  async function screenHealth(main) {
    main.append(h('h1', {}, t('nav.health')));
    const box = h('div', {testid: 'health'});
    main.append(box);
    async function refresh() {
      let hv;
      try { hv = await api('GET', '/v1/health'); } catch (e) { return clear(box).append(errorBox(e)); }
      const rpTime = hv.store.recoverable_point ? hv.store.recoverable_point.time : null;
      const oldestTime = hv.store.oldest_point ? hv.store.oldest_point.time : null;
      S.healthSamples.push({lag: hv.capture.lag_bytes, wal: hv.capture.wal_retained_bytes, store: hv.store.bytes_on_disk,
        age: rpTime ? (Date.parse(hv.time) - Date.parse(rpTime)) / 1000 : null});
      if (S.healthSamples.length > 120) S.healthSamples.shift();
      const series = (k) => S.healthSamples.map((x) => x[k]);
      const used = hv.disk.used_fraction;
      const gauge = h('div', {class: 'gauge', testid: 'storage-gauge', title: t('health.line80')}, h('div', {class: 'fill' + (used > 0.8 ? ' high' : '')}), h('div', {class: 'line80'}));
      gauge.firstChild.style.width = Math.min(100, (used || 0) * 100) + '%';
      const b = hv.backups;
      const last = b.last;
      clear(box).append(
        h('div', {class: 'row'}, h('span', {testid: 'health-status'}, badge(hv.status, t('health.status.' + hv.status))), h('span', {class: 'note'}, t('health.as_of'), ' ', localTime(hv.time))),
        hv.problems.length ? h('ul', {testid: 'problems'}, hv.problems.map((p) => h('li', {}, p))) : h('p', {class: 'note'}, t('health.no_problems')),
        h('div', {class: 'grid'},
          metric(t('health.success_rate'), pct(b.success_rate_30d), t('health.success_detail', {ok: num(b.succeeded_30d), failed: num(b.failed_30d)}), 'success-rate'),
          h('div', {class: 'metric', testid: 'storage'}, h('div', {class: 'label'}, t('health.storage')), h('div', {class: 'value'}, pct(used)), gauge,
            h('div', {class: 'sub'}, t('health.storage_detail', {free: bytes(hv.disk.free_bytes), total: bytes(hv.disk.total_bytes)}))),
          metric(t('health.last_backup'), last ? t('state.' + last.state) : '—', last ? localTime(last.finished_at || last.created_at) + ' · ' + tenantLabel(last.tenant) : t('health.no_backup'), 'last-backup'),
          h('div', {class: 'metric'}, h('div', {class: 'label'}, t('health.capture_lag')), h('div', {class: 'value'}, hv.capture.reachable ? bytes(hv.capture.lag_bytes) : t('health.unreachable')),
            h('div', {class: 'sub'}, hv.capture.reachable ? seconds(hv.capture.lag_seconds) : hv.capture.error), sparkline(series('lag'), 'spark-lag')),
          h('div', {class: 'metric'}, h('div', {class: 'label'}, t('health.wal')), h('div', {class: 'value'}, bytes(hv.capture.wal_retained_bytes)),
            h('div', {class: 'sub'}, t('health.slot', {slot: hv.capture.slot, state: hv.capture.active ? t('health.active') : t('health.inactive')})), sparkline(series('wal'))),
          h('div', {class: 'metric', testid: 'recoverable-point'}, h('div', {class: 'label'}, t('health.recoverable')), h('div', {class: 'value'}, rpTime ? localTime(rpTime) : '—'),
            h('div', {class: 'sub'}, rpTime ? utcTime(rpTime) + ' · ' + t('health.behind', {age: seconds(S.healthSamples.at(-1).age)}) : ''),
            oldestTime ? h('div', {class: 'sub', testid: 'recoverable-window', 'data-oldest': oldestTime, 'data-newest': rpTime},
              t('health.window', {oldest: localTime(oldestTime)}), h('br'), utcTime(oldestTime)) : null,
            sparkline(series('age'))),
          h('div', {class: 'metric'}, h('div', {class: 'label'}, t('health.store')), h('div', {class: 'value'}, bytes(hv.store.bytes_on_disk)),
            h('div', {class: 'sub'}, t('health.events', {n: num(hv.store.events_stored)})), sparkline(series('store'))),
          metric(t('health.dead_letters'), num(hv.store.dead_letters), hv.store.dead_letters ? t('health.dead_letters_hint') : null, 'dead-letters')),
        h('p', {class: 'note'}, t('health.charts_note')),
        h('h2', {}, t('health.compliance')),
        table([t('plans.name'), t('common.tenant'), t('health.rpo_target'), t('health.newest_backup_age'), t('health.rpo_ok'), t('health.rto_target'), t('health.measured_restore'), t('health.rto_ok')],
          hv.plans.map((p) => h('tr', {testid: 'compliance-row'}, h('td', {}, p.name), h('td', {}, tenantLabel(p.tenant)),
            h('td', {}, t('unit.minutes', {n: num(p.rpo_minutes)})), h('td', {}, p.newest_backup_age_minutes == null ? '—' : t('unit.minutes', {n: num(p.newest_backup_age_minutes, 1)})),
            h('td', {}, badge(p.rpo_ok ? 'ok' : 'critical', p.rpo_ok ? t('health.met') : t('health.missed'))),
            h('td', {}, t('unit.minutes', {n: num(p.rto_minutes)})), h('td', {}, seconds(p.last_restore_seconds)),
            h('td', {}, p.rto_ok == null ? h('span', {class: 'note'}, t('health.rto_unknown')) : badge(p.rto_ok ? 'ok' : 'warning', p.rto_ok ? t('health.met') : t('health.missed'))))), 'compliance'));
    }
    await refresh();
    S.timers.push(setInterval(refresh, 5000));
  }

  async function screenJobs(main) {
    main.append(h('h1', {}, t('nav.jobs')), h('p', {class: 'note'}, t('jobs.live')));
    const fState = select({testid: 'jobs-state'}, [['', t('jobs.all_states')], ...['queued', 'running', 'succeeded', 'failed'].map((x) => [x, t('state.' + x)])]);
    const fKind = select({testid: 'jobs-kind'}, [['', t('jobs.all_kinds')], ...['backup', 'restore', 'pitr', 'rollback', 'dr_test'].map((x) => [x, t('job.kind.' + x)])]);
    const box = h('div', {});
    const detail = h('div', {});
    // The first page is refreshed every 2 s, as many rows as are shown
    // ("More" adds the next page, which later refreshes keep).
    let jobs = [];
    let next = null;
    let shown = 0;
    const filters = () => {
      const q = {};
      if (fState.value) q.state = fState.value;
      if (fKind.value) q.kind = fKind.value;
      return q;
    };
    const reset = () => { shown = 0; refresh(); };
    main.append(h('section', {class: 'card'}, h('div', {class: 'row'}, field(t('jobs.state'), fState), field(t('jobs.kind'), fKind), pageSizeSelect(reset)), box, detail));
    async function more() {
      const page = await fetchPage('/v1/jobs', filters(), 'jobs', next);
      jobs.push(...page.items);
      next = page.next;
      shown = jobs.length;
      draw();
    }
    async function refresh() {
      try {
        const page = await fetchPage('/v1/jobs', filters(), 'jobs', null, Math.min(1000, Math.max(S.pageSize, shown)));
        jobs = page.items;
        next = page.next;
        draw();
      } catch (e) { clear(box).append(errorBox(e)); }
    }
    function draw() {
      clear(box).append(table([t('common.id'), t('jobs.kind'), t('common.tenant'), t('jobs.actor'), t('jobs.state'), t('jobs.phase'), t('jobs.created'), t('jobs.finished'), ''],
        jobs.map((j) => {
          const bar = h('div', {class: 'progress'}, h('div', {}));
          bar.firstChild.style.width = (j.state === 'succeeded' ? 100 : (j.progress || 0) * 100) + '%';
          return h('tr', {testid: 'job-row', 'data-id': j.id, 'data-kind': j.kind, 'data-state': j.state},
            h('td', {}, h('code', {}, j.id)), h('td', {}, t('job.kind.' + j.kind)), h('td', {}, tenantLabel(j.tenant)), h('td', {}, j.actor),
            h('td', {}, badge(j.state)), h('td', {}, h('span', {testid: 'job-phase'}, phaseText(j.phase)), bar, j.error ? h('div', {class: 'note'}, j.error.message) : null),
            h('td', {}, timeCell(j.created_at)), h('td', {}, timeCell(j.finished_at)),
            h('td', {class: 'actions-cell'}, h('button', {class: 'secondary', onclick: () => {
              clear(detail).append(h('h2', {}, j.id), h('pre', {class: 'mono'}, JSON.stringify(j, null, 2)));
            }}, t('jobs.details')),
            // Queued jobs, and running applies before they write (see cancellable).
            cancellable(j) && can('operator') ? h('button', {class: 'danger', testid: 'job-cancel', onclick: async () => {
              try { if (await cancelJob(j)) refresh(); } catch (e) { clear(detail).append(errorBox(e)); }
            }}, t('jobs.cancel')) : null,
            j.cancel_requested_by && j.state === 'running' ? h('div', {class: 'note', testid: 'cancel-requested'}, t('jobs.cancel_requested', {name: j.cancel_requested_by})) : null));
        }), 'jobs'),
        moreControl(jobs.length, next, more));
    }
    fState.onchange = reset; fKind.onchange = reset;
    await refresh();
    S.timers.push(setInterval(refresh, 2000));
  }

  async function screenAudit(main) {
    main.append(h('h1', {}, t('nav.audit')), h('p', {class: 'note'}, t('audit.intro')));
    const from = h('input', {type: 'date', testid: 'audit-from'});
    const to = h('input', {type: 'date', testid: 'audit-to'});
    const actor = h('input', {testid: 'audit-actor', size: 14});
    const tenant = h('input', {testid: 'audit-tenant', size: 12});
    const box = h('div', {});
    const verifyBox = h('div', {testid: 'audit-verify-result'});
    let entries = [];
    let next = null;
    let filters = {};
    async function search() {
      filters = {order: 'newest'};
      if (from.value) filters.from = localInputToDate(from.value, '00:00:00').toISOString();
      if (to.value) filters.to = new Date(localInputToDate(to.value, '00:00:00').getTime() + 86400e3).toISOString();
      if (actor.value.trim()) filters.actor = actor.value.trim();
      if (tenant.value.trim()) filters.tenant = tenant.value.trim();
      try {
        const page = await fetchPage('/v1/audit', filters, 'entries');
        entries = page.items;
        next = page.next;
      } catch (e) { return clear(box).append(errorBox(e)); }
      draw();
    }
    async function more() {
      const page = await fetchPage('/v1/audit', filters, 'entries', next);
      entries.push(...page.items);
      next = page.next;
      draw();
    }
    function draw() {
      clear(box).append(h('p', {class: 'note'}, t('audit.count', {n: num(entries.length)})),
        table(['#', t('audit.time'), t('jobs.actor'), t('audit.call'), t('common.tenant'), t('audit.status'), t('audit.message')],
          entries.map((e) => h('tr', {testid: 'audit-row', 'data-seq': e.seq, 'data-outcome': e.outcome},
            h('td', {class: 'num'}, num(e.seq)), h('td', {}, timeCell(e.time)), h('td', {}, e.actor || '—'),
            h('td', {}, h('code', {}, e.method + ' ' + e.path)), h('td', {}, e.tenant || '—'),
            h('td', {}, badge(e.outcome === 'ok' ? 'ok' : e.outcome === 'denied' ? 'critical' : 'warning', String(e.status) + ' ' + t('audit.outcome.' + e.outcome))),
            h('td', {}, e.message || ''))), 'audit'),
        moreControl(entries.length, next, more));
    }
    const verify = h('button', {class: 'secondary', testid: 'audit-verify', onclick: async () => {
      try {
        const v = await api('GET', '/v1/audit/verify');
        clear(verifyBox).append(v.ok ? h('div', {class: 'ok-box'}, t('audit.verified', {n: num(v.entries)}))
          : errorBox(t('audit.broken', {line: num(v.first_bad_line), problem: v.problem})));
      } catch (e) { clear(verifyBox).append(errorBox(e)); }
    }}, t('audit.verify'));
    main.append(h('section', {class: 'card'}, h('form', {class: 'inline', onsubmit: (ev) => { ev.preventDefault(); search(); }},
      field(t('audit.from'), from), field(t('audit.to'), to), field(t('jobs.actor'), actor), field(t('common.tenant'), tenant),
      pageSizeSelect(search), h('button', {type: 'submit', testid: 'audit-search'}, t('audit.search')), verify), verifyBox, box));
    await search();
  }

  // ---- shell: sign-in, navigation, language ----------------------------------

  function applyLang() {
    document.documentElement.lang = S.lang;
    document.documentElement.dir = S.lang === 'ar' ? 'rtl' : 'ltr';
    document.title = t('app.title');
  }

  function signOut(message) {
    S.token = '';
    S.session = null;
    sessionStorage.removeItem(TOKEN_KEY);
    render(message);
  }

  function langSwitch() {
    return select({testid: 'lang', 'aria-label': t('app.language'), onchange: (ev) => {
      S.lang = ev.target.value;
      localStorage.setItem(LANG_KEY, S.lang);
      render();
    }}, [['en', 'English'], ['ar', 'العربية']], S.lang);
  }

  function signIn(message) {
    const token = h('input', {type: 'password', autocomplete: 'off', testid: 'token', 'aria-label': t('signin.token')});
    const msg = h('div', {}, message ? errorBox(message) : null);
    return h('div', {class: 'signin'},
      h('div', {class: 'row'}, h('h1', {}, t('app.title')), langSwitch()),
      h('p', {class: 'note'}, t('signin.intro')),
      h('form', {testid: 'signin', onsubmit: async (ev) => {
        ev.preventDefault();
        S.token = token.value.trim();
        try {
          S.session = await api('GET', '/v1/session');
          sessionStorage.setItem(TOKEN_KEY, S.token);
          render();
        } catch (e) {
          S.token = '';
          S.session = null;
          clear(msg).append(errorBox(e.status === 401 ? t('signin.bad') : e.message));
        }
      }}, field(t('signin.token'), token), h('p', {}), h('button', {type: 'submit', testid: 'signin-btn'}, t('signin.button'))), msg);
  }

  function current() {
    const [name, query] = (location.hash.replace(/^#\/?/, '') || 'backups').split('?');
    return {name, params: Object.fromEntries(new URLSearchParams(query || ''))};
  }
  function go(name, params) {
    const q = params ? '?' + new URLSearchParams(params) : '';
    location.hash = '#/' + name + q;
  }

  async function render(message) {
    for (const id of S.timers) clearInterval(id);
    S.timers = [];
    applyLang();
    const app = clear(document.getElementById('app'));
    if (!S.session) return app.append(signIn(message));
    const {name, params} = current();
    const screens = SCREENS.filter(([, role]) => can(role));
    const screen = screens.find(([n]) => n === name) || screens[0];
    const main = h('main', {testid: 'screen-' + screen[0]});
    app.append(
      h('header', {class: 'top'}, h('span', {class: 'brand'}, t('app.title')),
        h('span', {class: 'who', testid: 'who'}, t('app.signed_in', {name: S.session.name, role: t('role.' + S.session.role),
          tenants: S.session.all_tenants ? t('common.every_tenant') : S.session.tenants.join(', ')})),
        langSwitch(), h('button', {testid: 'signout', onclick: () => signOut()}, t('app.sign_out'))),
      h('div', {class: 'layout'},
        h('nav', {class: 'side'}, screens.map(([n]) => h('a', {href: '#/' + n, testid: 'nav-' + n, class: n === screen[0] ? 'active' : null}, t('nav.' + n)))),
        main));
    try {
      await screen[2](main, params);
    } catch (e) {
      main.append(errorBox(e));
    }
  }

  window.addEventListener('hashchange', () => render());
  async function start() {
    applyLang();
    if (S.token) {
      try { S.session = await api('GET', '/v1/session'); } catch (e) { S.token = ''; sessionStorage.removeItem(TOKEN_KEY); }
    }
    render();
  }
  start();
})();
