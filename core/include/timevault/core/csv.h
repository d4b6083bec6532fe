// CSV fields for exports (the CLI's `state --format csv`, the API's
// `/state?format=csv`): RFC 4180 quoting, plus OWASP's neutralisation of
// formula injection, so a cell an attacker wrote into the database cannot run
// as a formula in the spreadsheet an analyst opens the export with.
#pragma once

#include <string>
#include <string_view>

namespace timevault::csv {

// Appends `v` as one CSV field:
//   - a value starting with '=', '+', '-', '@', tab or carriage return is
//     prefixed with a single quote (OWASP, "CSV Injection"), unless the whole
//     value is a plain decimal number ("-5", "+1.5e3": no formula can hide
//     in it, and numbers stay numbers);
//   - then quoted when it holds a comma, a double quote, CR or LF, with
//     quotes doubled.
// The prefix is visible in the export: "'=1+1" reads back as that text.
void AppendField(std::string* out, std::string_view v);

// AppendField into a new string.
std::string Field(std::string_view v);

}  // namespace timevault::csv
