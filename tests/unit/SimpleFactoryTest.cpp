// SDK 1.3 conveniences: SimpleFactory (Twisted's Factory.forProtocol) and the
// no-op default of Protocol::dataReceived.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "protohost/SimpleFactory.h"
#include "protohost/testing/MemoryTransport.h"

using protohost::Protocol;
using protohost::SimpleFactory;
using protohost::testing::MemoryTransport;

namespace {

class Greeter : public Protocol {
 public:
  Greeter() = default;
  Greeter(std::string greeting, int times) : greeting_(std::move(greeting)), times_(times) {}
  void connectionMade() override {
    for (int i = 0; i < times_; ++i) transport().write(greeting_);
  }

 private:
  std::string greeting_ = "hello";
  int times_ = 1;
};

// Writes only: no dataReceived override, so the SDK default applies.
class WriteOnly : public Protocol {
 public:
  void connectionMade() override { transport().write("banner\n"); }
};

std::string greetingOf(Protocol& p) {
  MemoryTransport t;
  t.connect(p);
  return t.value();
}

}  // namespace

TEST(SimpleFactory, DefaultBuildsADefaultConstructedProtocolPerCall) {
  SimpleFactory<Greeter> f;
  auto a = f.buildProtocol();
  auto b = f.buildProtocol();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a.get(), b.get());
  EXPECT_EQ(greetingOf(*a), "hello");
}

TEST(SimpleFactory, BuilderLambdaChoosesTheConstructor) {
  int built = 0;
  SimpleFactory<Greeter> f([&] {
    ++built;
    return std::make_unique<Greeter>("hi ", built);
  });
  auto first = f.buildProtocol();
  auto second = f.buildProtocol();
  EXPECT_EQ(greetingOf(*first), "hi ");
  EXPECT_EQ(greetingOf(*second), "hi hi ");
}

TEST(SimpleFactory, WithArgsCopiesTheArgumentsForEveryProtocol) {
  std::string greeting = "yo";
  auto f = SimpleFactory<Greeter>::withArgs(greeting, 2);
  greeting = "changed";  // the factory kept its own copy
  auto a = f.buildProtocol();
  auto b = f.buildProtocol();
  EXPECT_EQ(greetingOf(*a), "yoyo");
  EXPECT_EQ(greetingOf(*b), "yoyo");
}

TEST(SimpleFactory, ABuilderReturningNullRefusesTheConnection) {
  SimpleFactory<Greeter> f([] { return std::unique_ptr<Greeter>(); });
  EXPECT_EQ(f.buildProtocol(), nullptr);
}

TEST(ProtocolDefaults, DataReceivedIsANoOpForAWriteOnlyProtocol) {
  MemoryTransport t;
  WriteOnly p;
  t.connect(p);
  t.feed(p, "ignored input", 1);
  EXPECT_EQ(t.value(), "banner\n");
  EXPECT_FALSE(t.closed());
  t.feedEof(p);
  EXPECT_TRUE(t.closed()) << "readEnded keeps its default: close after flushing";
}
