// The column-type descriptor read from the catalog (column_type.h).
#include "timevault/wire/column_type.h"

#include <charconv>

namespace timevault::wire {

const std::string_view kColumnTypesSql = R"SQL(
SELECT a.attname,
       CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END AS typid,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
       bt.typname, bt.typcategory, bt.typelem,
       coalesce(et.typname, '') AS elem_typname, coalesce(et.typcategory::text, '') AS elem_typcategory,
       t.typtype = 'd' AS is_domain
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum
)SQL";

Result<ColumnType> ParseColumnTypeRow(const std::array<std::string_view, 8>& f) {
  ColumnType t;
  auto number = [](std::string_view s, auto* v) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
  };
  if (!number(f[0], &t.type_oid) || !number(f[1], &t.type_modifier) || !number(f[4], &t.element_type_oid))
    return InvalidArgument("column type row: bad number in (" + std::string(f[0]) + ", " + std::string(f[1]) + ", " +
                           std::string(f[4]) + ")");
  t.type_name = f[2];
  t.type_category = f[3].empty() ? 'U' : f[3][0];
  t.element_type_name = f[5];
  t.element_type_category = f[6].empty() ? '\0' : f[6][0];
  t.is_domain = f[7] == "t";
  return t;
}

}  // namespace timevault::wire
