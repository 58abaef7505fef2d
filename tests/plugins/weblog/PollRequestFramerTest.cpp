#include <gtest/gtest.h>

#include <string>

#include "PollRequestFramer.h"

using protohost::plugins::weblog::PollRequestFramer;

namespace {
PollRequestFramer::Result feedInChunks(PollRequestFramer& f, std::string_view data, std::size_t chunk) {
  PollRequestFramer::Result total;
  while (!data.empty() && !total.garbage) {
    auto r = f.feed(data.substr(0, std::min(chunk, data.size())));
    total.requests += r.requests;
    total.garbage = r.garbage;
    data.remove_prefix(std::min(chunk, data.size()));
  }
  return total;
}
}  // namespace

TEST(PollRequestFramer, OneRequestWithOrWithoutLineEnding) {
  for (const char* s : {"NEW?", "NEW?\n", "NEW?\r\n", "  NEW?  ", "\r\n\tNEW?"}) {
    PollRequestFramer f;
    auto r = f.feed(s);
    EXPECT_EQ(r.requests, 1u) << s;
    EXPECT_FALSE(r.garbage) << s;
    EXPECT_EQ(f.partial(), 0u);
  }
}

TEST(PollRequestFramer, SeveralRequestsInOneRead) {
  PollRequestFramer f;
  auto r = f.feed("NEW?NEW?\nNEW?\r\nNEW? NEW?");
  EXPECT_EQ(r.requests, 5u);
  EXPECT_FALSE(r.garbage);
}

TEST(PollRequestFramer, EveryChunkSizeCountsEveryRequestOnce) {
  const std::string stream = "NEW?NEW?\nNEW?\r\n  NEW?\tNEW?NEW?\r\n";
  for (std::size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    PollRequestFramer f;
    auto r = feedInChunks(f, stream, chunk);
    EXPECT_EQ(r.requests, 6u) << "chunk " << chunk;
    EXPECT_FALSE(r.garbage) << "chunk " << chunk;
  }
}

TEST(PollRequestFramer, SplitRequestCompletesOnTheLastByte) {
  PollRequestFramer f;
  EXPECT_EQ(f.feed("NE").requests, 0u);
  EXPECT_EQ(f.partial(), 2u);
  EXPECT_EQ(f.feed("W").requests, 0u);
  EXPECT_EQ(f.feed("?").requests, 1u);
  EXPECT_EQ(f.partial(), 0u);
}

TEST(PollRequestFramer, GarbageStopsFramingForGood) {
  {
    PollRequestFramer f;
    auto r = f.feed("NEW?NEW?GET / HTTP/1.0\r\n");
    EXPECT_EQ(r.requests, 2u);  // the requests before the garbage still count
    EXPECT_TRUE(r.garbage);
    EXPECT_TRUE(f.feed("NEW?").garbage);
    EXPECT_EQ(f.feed("NEW?").requests, 0u);
  }
  for (const char* s : {"new?", "NEWS", "NE W?", "NEW\n?", "?", "\x00"}) {
    PollRequestFramer f;
    EXPECT_TRUE(f.feed(std::string_view(s, std::max<std::size_t>(1, std::char_traits<char>::length(s)))).garbage) << s;
  }
}
