#pragma once
// The factory's shared hit history and subscriber registry, safe for any thread.
//
// Every published hit (one formatted <hit/> element) gets the next sequence
// number. Each subscriber (one connection) has a cursor: the first hit it has
// not taken yet, starting after the last hit published before it subscribed,
// so a client sees only hits that arrived after it connected. pull() hands a
// subscriber everything after its cursor and advances it.
//
// Bounds: the hub keeps the last `history` hits, and beyond that only hits that
// some subscriber has not taken yet, never more than maxRetainedBytes in all
// (oldest dropped first). A subscriber whose unread hits exceed what the caller
// can still accept (its max_client_backlog_bytes) gets TooFarBehind instead of
// a batch: it is too slow and must be disconnected; it is never silently skipped.
// Memory is therefore bounded per factory, not per client.
//
// Pacing: the publisher asks room() before it publishes and holds the rest of
// a burst (the log file is the buffer) while a *paced* subscriber (one with a
// wake function: a push client) has Limits::paceAtBytes unread. A paced
// subscriber is woken well before that, so a client that reads keeps up with
// a burst of any size; one that does not read fills its own output bound and
// is disconnected by its protocol, which releases the publisher. Poll
// subscribers are not paced (their requests are not in the host's control):
// they must ask at least once per maxRetainedBytes of new hits.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace protohost::plugins::weblog {

class HitHub {
 public:
  struct Limits {
    std::size_t history = 100;                  ///< hits kept even when nobody needs them
    std::size_t maxRetainedBytes = 1024 * 1024;  ///< hard cap on the bytes of all kept hits
    /// Unread bytes at which a paced subscriber holds the publisher back (no pacing by default).
    std::size_t paceAtBytes = SIZE_MAX;
  };
  using Hit = std::shared_ptr<const std::string>;
  using SubscriberId = std::uint64_t;
  /// Called by publish() with the hub's lock held: it must only hand work off
  /// (Reactor::post) and never call back into the hub.
  using WakeFn = std::function<void()>;

  enum class PullStatus { Ok, TooFarBehind };
  struct Batch {
    PullStatus status = PullStatus::Ok;
    std::vector<Hit> hits;   ///< in order; empty when nothing is new
    std::size_t bytes = 0;   ///< bytes of hits (Ok) or of unread hits (TooFarBehind)
  };

  explicit HitHub(Limits limits);
  HitHub(const HitHub&) = delete;
  HitHub& operator=(const HitHub&) = delete;

  /// Registers a subscriber; its first pull returns hits published after this call.
  /// @p wake, when set, is called once new unread hits reach @p wakeAtBytes
  /// bytes, then not again until the subscriber pulls (one wake-up in flight at most).
  SubscriberId subscribe(WakeFn wake = {}, std::size_t wakeAtBytes = 1);
  /// Forgets @p id; no wake for it starts after this returns. Idempotent.
  void unsubscribe(SubscriberId id);

  /// Takes the hits @p id has not seen when they fit in @p maxBytes.
  Batch pull(SubscriberId id, std::size_t maxBytes);

  /// Appends @p hits (formatted elements), drops what the bounds no longer
  /// keep, and wakes the subscribers that asked for it.
  void publish(std::vector<std::string> hits);

  /// Bytes the publisher may add now without taking a paced subscriber past
  /// paceAtBytes unread (SIZE_MAX when no paced subscriber holds it back).
  std::size_t room() const;

  /// Arms a one-shot call of @p fn once room() reaches @p bytes (called with
  /// the hub's lock held, from the thread of the pull that made room: it must
  /// only hand work off). Replaces an earlier request; an empty @p fn cancels.
  /// Also wakes, once, each paced subscriber that keeps room() below @p bytes.
  void notifyWhenRoom(std::size_t bytes, WakeFn fn);

  /// Gives up on the paced subscribers that keep room() below @p bytes (their
  /// reactors did not let them pull in time): each is marked too far behind,
  /// stops holding the publisher back and is woken to find out. Returns how many.
  std::size_t cutLaggards(std::size_t bytes);

  /// Whether cutLaggards gave up on @p id (its protocol must disconnect it).
  bool isCut(SubscriberId id) const;

  /// Counts a client disconnected for being too slow (for logs and tests).
  void noteSlowClient() { slowClients_.fetch_add(1, std::memory_order_relaxed); }

  // Observers (any thread).
  std::uint64_t publishedHits() const;
  std::size_t retainedHits() const;
  std::size_t retainedBytes() const;
  std::size_t subscriberCount() const;
  std::uint64_t slowClients() const { return slowClients_.load(std::memory_order_relaxed); }
  const Limits& limits() const { return limits_; }

 private:
  struct Entry {
    std::uint64_t seq;
    Hit xml;
  };
  struct Subscriber {
    std::uint64_t cursorSeq;     // first hit not taken
    std::uint64_t cursorOffset;  // total bytes published before cursorSeq
    WakeFn wake;
    std::size_t wakeAtBytes;
    bool woken = false;
    bool cut = false;  // given up on by cutLaggards: its next pull is TooFarBehind
    bool paced() const { return wake && !cut; }
  };
  void evictLocked();
  std::size_t roomLocked() const;
  /// Whether @p s, paced, keeps the publisher from adding @p bytes.
  bool holdsBackLocked(const Subscriber& s, std::size_t bytes) const;
  /// Removes one paced subscriber's entry from pacedOffsets_.
  void forgetPacedOffsetLocked(std::uint64_t offset);
  void notifyRoomLocked();

  const Limits limits_;
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;            // consecutive sequence numbers
  std::uint64_t nextSeq_ = 0;            // sequence of the next published hit
  std::uint64_t totalBytes_ = 0;         // bytes of all hits ever published
  std::size_t retainedBytes_ = 0;        // bytes of entries_
  std::map<SubscriberId, Subscriber> subscribers_;
  // cursorOffset of every paced subscriber (wake set, not cut): room() reads
  // the smallest in O(1) instead of walking every subscriber on each pull.
  std::multiset<std::uint64_t> pacedOffsets_;
  SubscriberId lastId_ = 0;
  std::atomic<std::uint64_t> slowClients_{0};
  WakeFn roomFn_;                        // notifyWhenRoom's request, if armed
  std::size_t roomWanted_ = 0;
};

}  // namespace protohost::plugins::weblog
