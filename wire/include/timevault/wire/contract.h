// The names and constants of timevault's Debezium contract on Kafka: what
// capture writes, the store validates and replay reads. One home, so that a
// header or placeholder cannot be spelt differently by writer and reader.
// docs/compat.md §7.4, §7.5, §7.8; docs/wire.md.
#pragma once

#include <string_view>

namespace timevault::wire {

// The Debezium version timevault claims in source.version.
inline constexpr std::string_view kConnectorVersion = "3.6.1.Final";

// Debezium's placeholder for an unchanged-TOAST column (the value is not in
// the WAL). Written as this string, as its UTF-8 bytes in base64 (bytea:
// kUnavailableBase64), as a one-element array of it, or as an array of its
// byte values, depending on the column type (ToastForm in type_table.h). The
// store resolves it from the row's previous version (design invariant 5).
inline constexpr std::string_view kUnavailableValue = "__debezium_unavailable_value";
inline constexpr std::string_view kUnavailableBase64 = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==";

// The Kafka header timevault adds to a change event when a column of its
// `before` or `after` image was NULL but the JSON holds something else:
// JsonConverter writes a column's schema default in place of null
// (replace.null.with.default), and a NOT NULL column's NULL (a column outside
// the replica identity in a before image) becomes the default or Debezium's
// fallback (0, "", epoch...). The value bytes stay exactly Debezium's; the
// header says which fields are really null, as compact JSON naming the
// columns per image, images without such a column left out:
//   {"before":["note"],"after":["note","created_at"]}
// Absent when no column qualifies. docs/compat.md §7.4 and docs/capture.md.
inline constexpr std::string_view kNullsHeader = "__timevault.nulls";

// The Kafka header timevault adds to a change event when a column of its
// `before` or `after` image has a Debezium value that loses information or
// is absent (the fidelity header): Postgres's own text of those columns,
// exactly as pgoutput (or the snapshot's SELECT) gave it, null for a NULL,
// as compact JSON per image, images without such a column left out:
//   {"before":{"span":"1 mon"},"after":{"span":"1 year","tags":null}}
// Listed: columns Debezium leaves out of the payload (unknown, composite,
// extension types it cannot map), types whose mapping is lossy (interval,
// timetz, varbit, name, xml, unconstrained numeric, money, hstore, domains
// over arrays, ...), and values it cannot hold (numeric NaN/Infinity, arrays
// with bounds or several dimensions, timestamps past the last int64
// microsecond, an empty varbit(1)). Unchanged-TOAST columns are never listed.
// Never on tombstones; the value bytes stay exactly Debezium's.
// docs/compat.md §7.8.
inline constexpr std::string_view kTextHeader = "__timevault.text";

}  // namespace timevault::wire
