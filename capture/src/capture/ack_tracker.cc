#include "capture/ack_tracker.h"

#include <algorithm>
#include <cassert>

namespace timevault::capture {

AckTracker::Ticket AckTracker::Open() {
  entries_.push_back(Entry{next_ticket_, Lsn(), CommitTime(), 0, false});
  return next_ticket_++;
}

AckTracker::Entry* AckTracker::Find(Ticket ticket) {
  // Tickets are increasing along the deque: binary search by ticket.
  size_t lo = 0, hi = entries_.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (entries_[mid].ticket < ticket) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < entries_.size() && entries_[lo].ticket == ticket ? &entries_[lo] : nullptr;
}

void AckTracker::AddPending(Ticket ticket) {
  Entry* e = Find(ticket);
  assert(e && !e->closed);
  ++e->pending;
  ++pending_total_;
}

void AckTracker::Ack(Ticket ticket) {
  Entry* e = Find(ticket);
  assert(e && e->pending > 0);
  if (!e || e->pending == 0) return;
  --e->pending;
  --pending_total_;
}

void AckTracker::Close(Ticket ticket, Lsn end_lsn, CommitTime time) {
  Entry* e = Find(ticket);
  assert(e && !e->closed);
  e->end_lsn = end_lsn;
  e->time = time;
  e->closed = true;
}

void AckTracker::Marker(Lsn wal_end, CommitTime time) {
  // A complete entry at the back absorbs the marker: nothing lies between them.
  if (!entries_.empty() && entries_.back().closed && entries_.back().pending == 0 &&
      entries_.back().end_lsn <= wal_end) {
    entries_.back().end_lsn = wal_end;
    entries_.back().time = std::max(entries_.back().time, time);
    return;
  }
  entries_.push_back(Entry{next_ticket_++, wal_end, time, 0, true});
}

AckTracker::Position AckTracker::Confirmable() {
  while (!entries_.empty() && entries_.front().closed && entries_.front().pending == 0) {
    const Entry& e = entries_.front();
    if (e.end_lsn > confirmed_.lsn) confirmed_.lsn = e.end_lsn;
    if (e.time > confirmed_.time) confirmed_.time = e.time;
    entries_.pop_front();
  }
  return confirmed_;
}

}  // namespace timevault::capture
