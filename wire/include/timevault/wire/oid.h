// Well-known Postgres type OIDs (pg_type.dat): the built-in types the type
// table (type_table.h) maps, and their array types. Extension types have no
// fixed OID and are found by name.
#pragma once

#include <cstdint>

namespace timevault::wire::oid {

inline constexpr uint32_t kBool = 16;
inline constexpr uint32_t kBytea = 17;
inline constexpr uint32_t kChar = 18;
inline constexpr uint32_t kName = 19;
inline constexpr uint32_t kInt8 = 20;
inline constexpr uint32_t kInt2 = 21;
inline constexpr uint32_t kInt4 = 23;
inline constexpr uint32_t kText = 25;
inline constexpr uint32_t kOid = 26;
inline constexpr uint32_t kJson = 114;
inline constexpr uint32_t kXml = 142;
inline constexpr uint32_t kCidr = 650;
inline constexpr uint32_t kFloat4 = 700;
inline constexpr uint32_t kFloat8 = 701;
inline constexpr uint32_t kMacaddr8 = 774;
inline constexpr uint32_t kMoney = 790;
inline constexpr uint32_t kMacaddr = 829;
inline constexpr uint32_t kInet = 869;
inline constexpr uint32_t kBpchar = 1042;
inline constexpr uint32_t kVarchar = 1043;
inline constexpr uint32_t kDate = 1082;
inline constexpr uint32_t kTime = 1083;
inline constexpr uint32_t kTimestamp = 1114;
inline constexpr uint32_t kTimestamptz = 1184;
inline constexpr uint32_t kInterval = 1186;
inline constexpr uint32_t kTimetz = 1266;
inline constexpr uint32_t kBit = 1560;
inline constexpr uint32_t kVarbit = 1562;
inline constexpr uint32_t kNumeric = 1700;
inline constexpr uint32_t kUuid = 2950;
inline constexpr uint32_t kJsonb = 3802;
inline constexpr uint32_t kInt4Range = 3904;
inline constexpr uint32_t kNumRange = 3906;
inline constexpr uint32_t kTsRange = 3908;
inline constexpr uint32_t kTsTzRange = 3910;
inline constexpr uint32_t kDateRange = 3912;
inline constexpr uint32_t kInt8Range = 3926;
inline constexpr uint32_t kPoint = 600;
inline constexpr uint32_t kTsvector = 3614;

// Array types.
inline constexpr uint32_t kJsonArray = 199;
inline constexpr uint32_t kCidrArray = 651;
inline constexpr uint32_t kMacaddr8Array = 775;
inline constexpr uint32_t kBoolArray = 1000;
inline constexpr uint32_t kCharArray = 1002;
inline constexpr uint32_t kInt2Array = 1005;
inline constexpr uint32_t kInt4Array = 1007;
inline constexpr uint32_t kTextArray = 1009;
inline constexpr uint32_t kBpcharArray = 1014;
inline constexpr uint32_t kVarcharArray = 1015;
inline constexpr uint32_t kInt8Array = 1016;
inline constexpr uint32_t kFloat4Array = 1021;
inline constexpr uint32_t kFloat8Array = 1022;
inline constexpr uint32_t kOidArray = 1028;
inline constexpr uint32_t kMacaddrArray = 1040;
inline constexpr uint32_t kInetArray = 1041;
inline constexpr uint32_t kTimestampArray = 1115;
inline constexpr uint32_t kDateArray = 1182;
inline constexpr uint32_t kTimeArray = 1183;
inline constexpr uint32_t kTimestamptzArray = 1185;
inline constexpr uint32_t kNumericArray = 1231;
inline constexpr uint32_t kUuidArray = 2951;
inline constexpr uint32_t kJsonbArray = 3807;
inline constexpr uint32_t kInt4RangeArray = 3905;
inline constexpr uint32_t kNumRangeArray = 3907;
inline constexpr uint32_t kTsRangeArray = 3909;
inline constexpr uint32_t kTsTzRangeArray = 3911;
inline constexpr uint32_t kDateRangeArray = 3913;
inline constexpr uint32_t kInt8RangeArray = 3927;

}  // namespace timevault::wire::oid
