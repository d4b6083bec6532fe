// Postgres text -> Debezium JSON (capture's direction of the type table):
// the Connect schema of a column and the JSON of a value given in Postgres
// text format (pgoutput 't' columns, or text results of the snapshot's
// SELECT, with DateStyle=ISO and IntervalStyle=postgres), as Kafka Connect's
// JsonConverter writes them. Pure functions; thread-safe.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string_view>

#include "timevault/wire/type_table.h"

namespace timevault::wire {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Writes the Connect field schema of the column (ending with "field": name).
void WriteFieldSchema(JsonWriter& w, const ColumnCodec& codec, std::string_view field_name);

// Writes the JSON of a value in Postgres text format. Returns false when the
// text cannot be parsed for the type (nothing usable was written).
bool WriteValue(JsonWriter& w, const ColumnCodec& codec, std::string_view text);

// For a kByValue column: is this (non-NULL) text one whose JSON loses
// information (numeric NaN/Infinity, a timestamp past the last int64
// microsecond, an empty varbit(1), a multi-dimensional array or one with
// explicit bounds, an array holding such an element)?
bool LossyValue(const ColumnCodec& codec, std::string_view text);

// Writes what a NULL becomes, and the unchanged-TOAST placeholder.
void WriteNull(JsonWriter& w, const ColumnCodec& codec);
void WriteToastPlaceholder(JsonWriter& w, const ColumnCodec& codec);

}  // namespace timevault::wire
