#include "HitHub.h"

#include <algorithm>
#include <utility>

namespace protohost::plugins::weblog {

HitHub::HitHub(Limits limits) : limits_(limits) {}

HitHub::SubscriberId HitHub::subscribe(WakeFn wake, std::size_t wakeAtBytes) {
  std::lock_guard lock(mutex_);
  SubscriberId id = ++lastId_;
  auto [it, added] = subscribers_.emplace(id, Subscriber{nextSeq_, totalBytes_, std::move(wake),
                                                         std::max<std::size_t>(wakeAtBytes, 1), false});
  if (it->second.paced()) pacedOffsets_.insert(totalBytes_);
  return id;
}

void HitHub::unsubscribe(SubscriberId id) {
  WakeFn doomed;  // destroyed outside the lock
  std::lock_guard lock(mutex_);
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  const bool wasPaced = it->second.paced();
  if (wasPaced) forgetPacedOffsetLocked(it->second.cursorOffset);
  doomed = std::move(it->second.wake);
  subscribers_.erase(it);
  if (wasPaced) notifyRoomLocked();  // a laggard that leaves releases the publisher
}

HitHub::Batch HitHub::pull(SubscriberId id, std::size_t maxBytes) {
  Batch batch;
  std::lock_guard lock(mutex_);
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return batch;
  Subscriber& s = it->second;
  s.woken = false;
  const std::uint64_t unread = totalBytes_ - s.cursorOffset;
  if (s.cut) {
    batch.status = PullStatus::TooFarBehind;
    batch.bytes = static_cast<std::size_t>(unread);
    return batch;
  }
  if (s.cursorSeq == nextSeq_) return batch;
  if (unread > maxBytes || entries_.empty() || entries_.front().seq > s.cursorSeq) {
    batch.status = PullStatus::TooFarBehind;
    batch.bytes = static_cast<std::size_t>(unread);
    return batch;
  }
  const auto first = entries_.begin() + static_cast<std::ptrdiff_t>(s.cursorSeq - entries_.front().seq);
  batch.hits.reserve(static_cast<std::size_t>(entries_.end() - first));
  for (auto e = first; e != entries_.end(); ++e) batch.hits.push_back(e->xml);
  batch.bytes = static_cast<std::size_t>(unread);
  if (s.paced()) {
    forgetPacedOffsetLocked(s.cursorOffset);
    pacedOffsets_.insert(totalBytes_);
  }
  s.cursorSeq = nextSeq_;
  s.cursorOffset = totalBytes_;
  if (s.wake) notifyRoomLocked();
  return batch;
}

bool HitHub::holdsBackLocked(const Subscriber& s, std::size_t bytes) const {
  return s.paced() && totalBytes_ - s.cursorOffset + bytes > limits_.paceAtBytes;
}

void HitHub::forgetPacedOffsetLocked(std::uint64_t offset) {
  auto it = pacedOffsets_.find(offset);
  if (it != pacedOffsets_.end()) pacedOffsets_.erase(it);  // one of the equal ones
}

bool HitHub::isCut(SubscriberId id) const {
  std::lock_guard lock(mutex_);
  auto it = subscribers_.find(id);
  return it != subscribers_.end() && it->second.cut;
}

std::size_t HitHub::room() const {
  std::lock_guard lock(mutex_);
  return roomLocked();
}

std::size_t HitHub::roomLocked() const {
  if (limits_.paceAtBytes == SIZE_MAX || pacedOffsets_.empty()) return SIZE_MAX;
  // The paced subscriber furthest behind is the one with the smallest cursor offset.
  const std::uint64_t maxUnread = totalBytes_ - *pacedOffsets_.begin();
  return maxUnread >= limits_.paceAtBytes ? 0 : static_cast<std::size_t>(limits_.paceAtBytes - maxUnread);
}

void HitHub::notifyWhenRoom(std::size_t bytes, WakeFn fn) {
  WakeFn doomed;  // destroyed outside the lock
  std::lock_guard lock(mutex_);
  doomed = std::exchange(roomFn_, std::move(fn));
  roomWanted_ = bytes;
  if (roomFn_ && limits_.paceAtBytes != SIZE_MAX) {
    // Wake the subscribers that hold the publisher back and were not woken
    // yet (their wake threshold may lie above what they hold now): they pull,
    // or their protocol waits for its peer; either way they are not mistaken
    // for laggards while their own push timer is far away.
    for (auto& [id, s] : subscribers_) {
      if (s.woken || s.cursorSeq == nextSeq_ || !holdsBackLocked(s, bytes)) continue;
      s.woken = true;
      s.wake();
    }
  }
  notifyRoomLocked();
}

void HitHub::notifyRoomLocked() {
  if (!roomFn_ || roomLocked() < roomWanted_) return;
  WakeFn fn = std::exchange(roomFn_, WakeFn());
  fn();
}

std::size_t HitHub::cutLaggards(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  if (limits_.paceAtBytes == SIZE_MAX) return 0;
  std::size_t cut = 0;
  for (auto& [id, s] : subscribers_) {
    if (!holdsBackLocked(s, bytes)) continue;
    forgetPacedOffsetLocked(s.cursorOffset);
    s.cut = true;
    ++cut;
    s.woken = true;
    s.wake();  // even if a wake is pending: it may be parked on its own output
  }
  evictLocked();
  notifyRoomLocked();
  return cut;
}

void HitHub::publish(std::vector<std::string> hits) {
  if (hits.empty()) return;
  std::lock_guard lock(mutex_);
  for (auto& h : hits) {
    const std::size_t n = h.size();
    entries_.push_back(Entry{nextSeq_++, std::make_shared<const std::string>(std::move(h))});
    totalBytes_ += n;
    retainedBytes_ += n;
  }
  evictLocked();
  for (auto& [id, s] : subscribers_) {
    if (!s.wake || s.woken || s.cut || s.cursorSeq == nextSeq_) continue;
    if (totalBytes_ - s.cursorOffset < s.wakeAtBytes) continue;
    s.woken = true;
    s.wake();
  }
}

void HitHub::evictLocked() {
  std::uint64_t minCursor = nextSeq_;
  for (const auto& [id, s] : subscribers_)
    if (!s.cut) minCursor = std::min(minCursor, s.cursorSeq);
  while (!entries_.empty()) {
    const Entry& front = entries_.front();
    const bool overBytes = retainedBytes_ > limits_.maxRetainedBytes;
    const bool overCount = entries_.size() > limits_.history;
    const bool needed = front.seq >= minCursor;
    if (!overBytes && !(overCount && !needed)) break;
    retainedBytes_ -= front.xml->size();
    entries_.pop_front();
  }
}

std::uint64_t HitHub::publishedHits() const {
  std::lock_guard lock(mutex_);
  return nextSeq_;
}

std::size_t HitHub::retainedHits() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::size_t HitHub::retainedBytes() const {
  std::lock_guard lock(mutex_);
  return retainedBytes_;
}

std::size_t HitHub::subscriberCount() const {
  std::lock_guard lock(mutex_);
  return subscribers_.size();
}

}  // namespace protohost::plugins::weblog
