#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "HitHub.h"

using protohost::plugins::weblog::HitHub;

namespace {

std::vector<std::string> hits(int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i < to; ++i) v.push_back("<h n=\"" + std::to_string(i) + "\"/>");
  return v;
}

std::string joined(const HitHub::Batch& b) {
  std::string s;
  for (const auto& h : b.hits) s += *h;
  return s;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& h : v) s += h;
  return s;
}

constexpr std::size_t kBig = 1 << 30;

}  // namespace

TEST(HitHub, SubscriberSeesOnlyHitsPublishedAfterItSubscribed) {
  HitHub hub({100, 1 << 20});
  hub.publish(hits(0, 3));
  auto id = hub.subscribe();
  EXPECT_TRUE(hub.pull(id, kBig).hits.empty());
  hub.publish(hits(3, 5));
  auto b = hub.pull(id, kBig);
  EXPECT_EQ(b.status, HitHub::PullStatus::Ok);
  EXPECT_EQ(joined(b), joined(hits(3, 5)));
  EXPECT_EQ(b.bytes, joined(hits(3, 5)).size());
  EXPECT_TRUE(hub.pull(id, kBig).hits.empty());  // nothing twice
}

TEST(HitHub, EverySubscriberGetsEveryHitOnceInOrder) {
  HitHub hub({10, 1 << 20});
  auto a = hub.subscribe();
  hub.publish(hits(0, 4));
  auto b = hub.subscribe();
  hub.publish(hits(4, 6));
  EXPECT_EQ(joined(hub.pull(a, kBig)), joined(hits(0, 6)));
  EXPECT_EQ(joined(hub.pull(b, kBig)), joined(hits(4, 6)));
  hub.publish(hits(6, 7));
  EXPECT_EQ(joined(hub.pull(b, kBig)), joined(hits(6, 7)));
  EXPECT_EQ(joined(hub.pull(a, kBig)), joined(hits(6, 7)));
}

TEST(HitHub, KeepsTheLastHistoryHitsWhenNobodyNeedsMore) {
  HitHub hub({3, 1 << 20});
  hub.publish(hits(0, 10));
  EXPECT_EQ(hub.retainedHits(), 3u);
  EXPECT_EQ(hub.publishedHits(), 10u);
}

TEST(HitHub, KeepsUnreadHitsBeyondHistoryUpToTheByteCap) {
  HitHub hub({2, 1 << 20});
  auto id = hub.subscribe();
  hub.publish(hits(0, 50));
  EXPECT_EQ(hub.retainedHits(), 50u);  // a subscriber still needs them
  EXPECT_EQ(joined(hub.pull(id, kBig)), joined(hits(0, 50)));
  hub.publish(hits(50, 51));  // eviction runs on publish
  EXPECT_EQ(hub.retainedHits(), 2u);
}

TEST(HitHub, ASubscriberTooFarBehindIsToldSoAndNeverSkipped) {
  const std::size_t hitSize = hits(0, 1)[0].size();
  HitHub hub({0, 10 * hitSize});
  auto slow = hub.subscribe();
  auto fast = hub.subscribe();
  for (int i = 0; i < 30; ++i) {
    hub.publish(hits(i, i + 1));
    EXPECT_EQ(joined(hub.pull(fast, kBig)), joined(hits(i, i + 1)));
  }
  EXPECT_LE(hub.retainedBytes(), 10 * hitSize);
  auto b = hub.pull(slow, kBig);
  EXPECT_EQ(b.status, HitHub::PullStatus::TooFarBehind);
  EXPECT_TRUE(b.hits.empty());
}

TEST(HitHub, PullLargerThanTheCallersBudgetIsTooFarBehindAndKeepsTheCursor) {
  HitHub hub({100, 1 << 20});
  auto id = hub.subscribe();
  hub.publish(hits(0, 10));
  const std::size_t all = joined(hits(0, 10)).size();
  auto b = hub.pull(id, all - 1);
  EXPECT_EQ(b.status, HitHub::PullStatus::TooFarBehind);
  EXPECT_EQ(b.bytes, all);
  b = hub.pull(id, all);
  EXPECT_EQ(b.status, HitHub::PullStatus::Ok);
  EXPECT_EQ(joined(b), joined(hits(0, 10)));
}

TEST(HitHub, WakeOncePerPullAndOnlyPastTheThreshold) {
  HitHub hub({100, 1 << 20});
  int wakes = 0;
  auto id = hub.subscribe([&] { ++wakes; }, 1);
  hub.publish(hits(0, 1));
  hub.publish(hits(1, 2));
  EXPECT_EQ(wakes, 1);  // one wake-up in flight at most
  hub.pull(id, kBig);
  hub.publish(hits(2, 3));
  EXPECT_EQ(wakes, 2);
  hub.publish({});
  EXPECT_EQ(wakes, 2);

  int late = 0;
  const std::size_t threshold = 3 * hits(0, 1)[0].size();
  auto big = hub.subscribe([&] { ++late; }, threshold);
  hub.publish(hits(3, 5));
  EXPECT_EQ(late, 0);
  hub.publish(hits(5, 6));
  EXPECT_EQ(late, 1);
  hub.unsubscribe(big);
  hub.unsubscribe(id);
  hub.publish(hits(6, 20));
  EXPECT_EQ(late, 1);
  EXPECT_EQ(wakes, 2);
  EXPECT_EQ(hub.subscriberCount(), 0u);
  hub.unsubscribe(id);  // idempotent
}

TEST(HitHub, WithoutPacedSubscribersThereIsNoLimitToRoom) {
  HitHub hub({100, 1 << 20, 1000});
  EXPECT_EQ(hub.room(), SIZE_MAX);
  auto poll = hub.subscribe();  // no wake function: a poll client is not paced
  hub.publish(hits(0, 100));
  EXPECT_EQ(hub.room(), SIZE_MAX);
  hub.unsubscribe(poll);
  HitHub unpaced({100, 1 << 20});
  unpaced.subscribe([] {}, 1);
  unpaced.publish(hits(0, 100));
  EXPECT_EQ(unpaced.room(), SIZE_MAX);
}

TEST(HitHub, RoomIsWhatTheFurthestBehindPushSubscriberCanStillTake) {
  const std::size_t hit = hits(0, 1)[0].size();
  HitHub hub({100, 1 << 20, 10 * hit});
  auto a = hub.subscribe([] {}, 1);
  auto b = hub.subscribe([] {}, 1);
  EXPECT_EQ(hub.room(), 10 * hit);
  hub.publish(hits(0, 4));
  EXPECT_EQ(hub.room(), 6 * hit);
  hub.pull(a, kBig);
  EXPECT_EQ(hub.room(), 6 * hit);  // b still holds 4 unread
  hub.publish(hits(4, 10));
  EXPECT_EQ(hub.room(), 0u);
  hub.pull(b, kBig);
  EXPECT_EQ(hub.room(), 4 * hit);  // now a is the furthest behind
  hub.pull(a, kBig);
  EXPECT_EQ(hub.room(), 10 * hit);
}

TEST(HitHub, RoomFollowsSubscribersThatShareACursorLeaveOrArePollOnly) {
  const std::size_t hit = hits(0, 1)[0].size();
  HitHub hub({100, 1 << 20, 10 * hit});
  auto a = hub.subscribe([] {}, 1);
  auto b = hub.subscribe([] {}, 1);  // same cursor as a
  auto poll = hub.subscribe();       // no wake: never paces the publisher
  hub.publish(hits(0, 3));
  hub.pull(a, kBig);
  EXPECT_EQ(hub.room(), 7 * hit);  // b, at the shared old cursor, still holds 3
  hub.unsubscribe(b);
  EXPECT_EQ(hub.room(), 10 * hit);  // only a is left, and it is caught up
  hub.publish(hits(3, 9));
  EXPECT_EQ(hub.room(), 4 * hit);
  hub.unsubscribe(a);
  EXPECT_EQ(hub.room(), SIZE_MAX);  // the poll subscriber, 9 behind, does not count
  EXPECT_EQ(hub.pull(poll, kBig).hits.size(), 9u);
}

TEST(HitHub, RoomMatchesTheFurthestBehindPacedSubscriberThroughAnyMixOfCalls) {
  // A model of room(): walk every paced subscriber. Deterministic pseudo-random calls.
  auto fixedHits = [](int from, int to) {  // all the same size, unlike hits()
    std::vector<std::string> v;
    for (int i = from; i < to; ++i) v.push_back("<h n=\"" + std::to_string(100000 + i) + "\"/>");
    return v;
  };
  const std::size_t hit = fixedHits(0, 1)[0].size();
  const std::size_t pace = 40 * hit;
  HitHub hub({8, 1 << 20, pace});
  struct Model { HitHub::SubscriberId id; bool paced; std::size_t unread = 0; bool cut = false; };
  std::vector<Model> subs;
  unsigned seed = 12345;
  auto next = [&] {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) & 0x7fffu;
  };
  int published = 0;
  for (int step = 0; step < 3000; ++step) {
    const unsigned op = next() % 10;
    if (op < 2 || subs.empty()) {
      const bool paced = next() % 4 != 0;
      subs.push_back({paced ? hub.subscribe([] {}, 1) : hub.subscribe(), paced});
    } else if (op < 5) {
      const int n = 1 + static_cast<int>(next() % 3);
      hub.publish(fixedHits(published, published + n));
      published += n;
      for (auto& m : subs) m.unread += static_cast<std::size_t>(n) * hit;
    } else if (op < 8) {
      auto& m = subs[next() % subs.size()];
      const auto batch = hub.pull(m.id, kBig);
      if (batch.status == HitHub::PullStatus::Ok) m.unread = 0;
    } else if (op < 9) {
      const std::size_t i = next() % subs.size();
      hub.unsubscribe(subs[i].id);
      subs.erase(subs.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      const std::size_t want = (next() % 5) * hit;
      hub.cutLaggards(want);
      for (auto& m : subs)
        if (m.paced && !m.cut && m.unread + want > pace) m.cut = true;
    }
    std::size_t maxUnread = 0;
    bool anyPaced = false;
    for (const auto& m : subs) {
      if (!m.paced || m.cut) continue;
      anyPaced = true;
      maxUnread = std::max(maxUnread, m.unread);
    }
    const std::size_t expected = !anyPaced ? SIZE_MAX : maxUnread >= pace ? 0 : pace - maxUnread;
    ASSERT_EQ(hub.room(), expected) << "after step " << step;
  }
}

TEST(HitHub, NotifyWhenRoomFiresOnceWhenThePullThatMakesRoomHappens) {
  const std::size_t hit = hits(0, 1)[0].size();
  HitHub hub({100, 1 << 20, 4 * hit});
  auto fast = hub.subscribe([] {}, 1);
  auto slow = hub.subscribe([] {}, 1);
  hub.publish(hits(0, 4));
  int calls = 0;
  hub.notifyWhenRoom(2 * hit, [&] { ++calls; });
  EXPECT_EQ(calls, 0);
  hub.pull(fast, kBig);
  EXPECT_EQ(calls, 0);  // slow still holds 4
  hub.pull(slow, kBig);
  EXPECT_EQ(calls, 1);
  hub.publish(hits(4, 8));
  hub.pull(slow, kBig);
  hub.pull(fast, kBig);
  EXPECT_EQ(calls, 1);  // one-shot
  // Already room: fires at once. A leaving laggard makes room too.
  hub.notifyWhenRoom(hit, [&] { ++calls; });
  EXPECT_EQ(calls, 2);
  hub.publish(hits(8, 12));
  hub.pull(fast, kBig);
  hub.notifyWhenRoom(hit, [&] { ++calls; });
  EXPECT_EQ(calls, 2);
  hub.unsubscribe(slow);
  EXPECT_EQ(calls, 3);
  // Cancel.
  hub.publish(hits(12, 16));
  hub.notifyWhenRoom(hit, [&] { ++calls; });
  hub.notifyWhenRoom(0, {});
  hub.pull(fast, kBig);
  EXPECT_EQ(calls, 3);
}

// A push client woken only at half its bound (push_interval_ms > 0) must not be
// mistaken for a laggard when one big hit waits: the publisher's wait wakes it.
TEST(HitHub, WaitingForRoomWakesTheSubscribersThatHoldThePublisherBack) {
  const std::size_t hit = hits(0, 1)[0].size();
  HitHub hub({100, 1 << 20, 10 * hit});
  int holderWakes = 0, otherWakes = 0;
  auto holder = hub.subscribe([&] { ++holderWakes; }, 8 * hit);  // not woken by 6 unread
  auto other = hub.subscribe([&] { ++otherWakes; }, 8 * hit);
  hub.publish(hits(0, 6));
  hub.pull(other, kBig);
  EXPECT_EQ(holderWakes, 0);
  int room = 0;
  hub.notifyWhenRoom(5 * hit, [&] { ++room; });  // 6 + 5 > 10: holder is in the way
  EXPECT_EQ(holderWakes, 1);
  EXPECT_EQ(otherWakes, 0);  // caught up: not in the way
  hub.notifyWhenRoom(5 * hit, [&] { ++room; });
  EXPECT_EQ(holderWakes, 1);  // once per pull
  hub.pull(holder, kBig);
  EXPECT_EQ(room, 1);
}

TEST(HitHub, CutLaggardsWakesThemAndTheirNextPullIsTooFarBehind) {
  const std::size_t hit = hits(0, 1)[0].size();
  HitHub hub({0, 1 << 20, 4 * hit});
  int fastWakes = 0, stuckWakes = 0;
  auto fast = hub.subscribe([&] { ++fastWakes; }, 1);
  auto stuck = hub.subscribe([&] { ++stuckWakes; }, 1000 * hit);  // never woken by publish
  hub.publish(hits(0, 4));
  hub.pull(fast, kBig);
  EXPECT_EQ(hub.room(), 0u);
  EXPECT_EQ(hub.cutLaggards(hit), 1u);
  EXPECT_EQ(stuckWakes, 1);
  EXPECT_EQ(fastWakes, 1);  // the publish woke it; the cut did not
  EXPECT_EQ(hub.room(), 4 * hit);  // the cut one no longer holds the publisher
  EXPECT_EQ(hub.retainedHits(), 0u);  // nor the hits it did not take
  auto b = hub.pull(stuck, kBig);
  EXPECT_EQ(b.status, HitHub::PullStatus::TooFarBehind);
  EXPECT_EQ(b.bytes, 4 * hit);
  hub.publish(hits(4, 6));
  EXPECT_EQ(stuckWakes, 1);  // never woken again
  EXPECT_EQ(joined(hub.pull(fast, kBig)), joined(hits(4, 6)));
  EXPECT_EQ(hub.cutLaggards(hit), 0u);
}

TEST(HitHub, ConcurrentPublisherAndSubscribersSeeEveryHitOnceInOrder) {
  constexpr int kHits = 20000;
  constexpr int kReaders = 4;
  HitHub hub({100, std::size_t{64} << 20});
  std::vector<HitHub::SubscriberId> ids;
  for (int r = 0; r < kReaders; ++r) ids.push_back(hub.subscribe());
  std::atomic<int> wakes{0};
  auto waker = hub.subscribe([&] { wakes.fetch_add(1); });

  std::vector<std::string> received(kReaders);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      std::size_t want = joined(hits(0, kHits)).size();
      while (received[r].size() < want) {
        auto b = hub.pull(ids[r], kBig);
        ASSERT_EQ(b.status, HitHub::PullStatus::Ok);
        for (const auto& h : b.hits) received[r] += *h;
        std::this_thread::yield();
      }
    });
  }
  std::thread publisher([&] {
    for (int i = 0; i < kHits; i += 7) hub.publish(hits(i, std::min(i + 7, kHits)));
  });
  publisher.join();
  for (auto& t : readers) t.join();
  for (int r = 0; r < kReaders; ++r) EXPECT_EQ(received[r], joined(hits(0, kHits))) << r;
  EXPECT_EQ(wakes.load(), 1);  // never pulled: woken once
  hub.unsubscribe(waker);
}
