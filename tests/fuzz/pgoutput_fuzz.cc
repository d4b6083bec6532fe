// libFuzzer target for the pgoutput and replication-stream decoders.
//
// Built with -fsanitize=fuzzer,address,undefined (tests/fuzz/CMakeLists.txt),
// so reads past the input, leaks and undefined behaviour crash. On top of
// that it checks the decoder's contracts and aborts when one breaks:
//   - a failure is always a Corruption status;
//   - every string_view of a decoded message points into the input;
//   - no strict prefix of a valid pgoutput message decodes (each message
//     ends with a field its counts or lengths require);
//   - an XLogData's payload is decoded as pgoutput too.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "timevault/capture/pgoutput.h"

namespace {

namespace pg = timevault::capture::pgoutput;

void Check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "pgoutput_fuzz: contract broken: %s\n", what);
  std::abort();
}

void CheckInside(std::string_view view, std::string_view input) {
  if (view.empty()) return;
  Check(view.data() >= input.data() && view.data() + view.size() <= input.data() + input.size(),
        "string_view outside the input");
}

void CheckTuple(const pg::Tuple& tuple, std::string_view input) {
  for (const pg::TupleColumn& col : tuple) {
    CheckInside(col.value, input);
    if (col.kind == pg::ColumnKind::kNull || col.kind == pg::ColumnKind::kUnchangedToast) {
      Check(col.value.empty(), "null or unchanged-TOAST column with a value");
    }
  }
}

void CheckMessage(const pg::Message& message, std::string_view input) {
  if (const auto* m = std::get_if<pg::Origin>(&message)) CheckInside(m->name, input);
  if (const auto* m = std::get_if<pg::Insert>(&message)) CheckTuple(m->new_tuple, input);
  if (const auto* m = std::get_if<pg::Update>(&message)) {
    CheckTuple(m->old_tuple, input);
    CheckTuple(m->new_tuple, input);
    Check(m->old_kind == 0 || m->old_kind == 'K' || m->old_kind == 'O', "bad update old_kind");
  }
  if (const auto* m = std::get_if<pg::Delete>(&message)) {
    CheckTuple(m->old_tuple, input);
    Check(m->old_kind == 'K' || m->old_kind == 'O', "bad delete old_kind");
  }
  if (const auto* m = std::get_if<pg::LogicalMessage>(&message)) {
    CheckInside(m->prefix, input);
    CheckInside(m->content, input);
  }
  if (const auto* m = std::get_if<pg::Relation>(&message)) Check(!m->schema.empty(), "empty relation schema");
}

void FuzzDecode(std::string_view input) {
  timevault::Result<pg::Message> result = pg::Decode(input);
  if (!result.ok()) {
    Check(result.status().code() == timevault::StatusCode::kCorruption, "Decode failed without Corruption");
    return;
  }
  CheckMessage(*result, input);
  Check(!pg::Decode(input.substr(0, input.size() - 1)).ok(), "a strict prefix of a valid message decoded");
}

void FuzzDecodeStream(std::string_view input) {
  timevault::Result<pg::StreamMessage> result = pg::DecodeStream(input);
  if (!result.ok()) {
    Check(result.status().code() == timevault::StatusCode::kCorruption, "DecodeStream failed without Corruption");
    return;
  }
  if (const auto* x = std::get_if<pg::XLogData>(&*result)) {
    CheckInside(x->payload, input);
    Check(x->payload.size() + 25 == input.size(), "XLogData payload size");
    FuzzDecode(x->payload);
  }
  if (const auto* k = std::get_if<pg::Keepalive>(&*result)) {
    const std::string reply = pg::EncodeStandbyStatus(k->wal_end, k->wal_end, k->wal_end, k->send_time, true);
    Check(reply.size() == 34 && reply[0] == 'r' && reply[33] == 1, "standby status update layout");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  FuzzDecode(input);
  FuzzDecodeStream(input);
  return 0;
}
