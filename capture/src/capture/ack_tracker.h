// AckTracker decides which LSN capture may confirm to Postgres (invariant 1):
// the end LSN of the newest transaction such that it and every earlier one
// were fully acknowledged by Kafka.
//
// Entries are kept in stream order. A transaction entry is opened at Begin,
// gains one pending count per produced message, is closed at Commit with its
// end LSN, and is complete when closed with no pending messages. A keepalive
// adds a marker entry carrying the server's WAL end: every commit before that
// WAL end reached us before the keepalive, so once the entries before the
// marker are complete, the WAL end itself is safe to confirm — this is what
// lets an idle capture release WAL.
//
// Not thread-safe: used by the capture loop thread only (delivery reports are
// served by rd_kafka_poll on that same thread).
#pragma once

#include <cstdint>
#include <deque>

#include "timevault/core/lsn.h"
#include "timevault/core/time.h"

namespace timevault::capture {

class AckTracker {
 public:
  using Ticket = uint64_t;  // identifies an entry; passed as a message's opaque

  // Opens a transaction entry; its messages count against the returned ticket.
  Ticket Open();
  // One more message of `ticket` handed to Kafka.
  void AddPending(Ticket ticket);
  // Kafka acknowledged one message of `ticket`.
  void Ack(Ticket ticket);
  // The transaction's last message was produced; `end_lsn` is its Commit end
  // LSN and `time` its commit time.
  void Close(Ticket ticket, Lsn end_lsn, CommitTime time);
  // A keepalive reported the server's WAL end at server time `time`.
  void Marker(Lsn wal_end, CommitTime time);

  struct Position {
    Lsn lsn;          // everything up to here is acknowledged by Kafka
    CommitTime time;  // the commit (or server) time of that position
  };
  // The position safe to confirm (never decreases). Pops complete entries.
  Position Confirmable();
  // Messages handed to Kafka and not yet acknowledged.
  uint64_t pending() const { return pending_total_; }
  // Entries (transactions and markers) not yet confirmable.
  size_t open_entries() const { return entries_.size(); }

 private:
  struct Entry {
    Ticket ticket;
    Lsn end_lsn;
    CommitTime time;
    uint64_t pending = 0;
    bool closed = false;
  };
  Entry* Find(Ticket ticket);

  std::deque<Entry> entries_;
  Ticket next_ticket_ = 1;
  uint64_t pending_total_ = 0;
  Position confirmed_;
};

}  // namespace timevault::capture
