// kprim/refcount.hpp: counting, saturation instead of wrapping, warn-once, and the
// conditional helpers.
#include <kprim/refcount.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <climits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace kprim;

TEST(Refcount, GetAndPut) {
  refcount_t r = REFCOUNT_INIT(1);
  refcount_inc(&r);
  refcount_add(3, &r);
  EXPECT_EQ(refcount_read(&r), 5u);
  EXPECT_FALSE(refcount_sub_and_test(3, &r));
  EXPECT_FALSE(refcount_dec_and_test(&r));
  int old = 0;
  EXPECT_TRUE(refcount_dec_and_test(&r, &old));
  EXPECT_EQ(old, 1);
  EXPECT_EQ(refcount_read(&r), 0u);
}

TEST(Refcount, IncNotZero) {
  refcount_t r = REFCOUNT_INIT(0);
  EXPECT_FALSE(refcount_inc_not_zero(&r));
  EXPECT_EQ(refcount_read(&r), 0u);
  refcount_set(&r, 2);
  EXPECT_TRUE(refcount_inc_not_zero(&r));
  EXPECT_TRUE(refcount_add_not_zero(2, &r));
  EXPECT_EQ(refcount_read(&r), 5u);
}

TEST(Refcount, DecIfOneAndDecNotOne) {
  refcount_t r = REFCOUNT_INIT(2);
  EXPECT_FALSE(refcount_dec_if_one(&r));
  EXPECT_TRUE(refcount_dec_not_one(&r));
  EXPECT_EQ(refcount_read(&r), 1u);
  EXPECT_FALSE(refcount_dec_not_one(&r));
  EXPECT_TRUE(refcount_dec_if_one(&r));
  EXPECT_EQ(refcount_read(&r), 0u);
}

TEST(Refcount, DecAndLockTakesTheLockOnlyForTheLastReference) {
  std::mutex m;
  refcount_t r = REFCOUNT_INIT(2);
  EXPECT_FALSE(refcount_dec_and_lock(&r, m));
  EXPECT_TRUE(m.try_lock());
  m.unlock();
  EXPECT_TRUE(refcount_dec_and_lock(&r, m));
  EXPECT_FALSE(m.try_lock());  // held by us
  m.unlock();
}

TEST(RefcountSaturation, OverflowSaturatesAndStaysSaturated) {
  const auto before = refcount_saturation_events(REFCOUNT_ADD_OVF);
  refcount_t r = REFCOUNT_INIT(REFCOUNT_MAX);
  refcount_inc(&r);
  EXPECT_EQ(static_cast<int>(refcount_read(&r)), REFCOUNT_SATURATED);
  EXPECT_EQ(refcount_saturation_events(REFCOUNT_ADD_OVF), before + 1);
  // A saturated count never reaches zero again: the object leaks instead of being freed.
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(refcount_dec_and_test(&r));
  refcount_inc(&r);
  EXPECT_EQ(static_cast<int>(refcount_read(&r)), REFCOUNT_SATURATED);
}

TEST(RefcountSaturation, AddOnZeroIsUseAfterFree) {
  const auto before = refcount_saturation_events(REFCOUNT_ADD_UAF);
  refcount_t r = REFCOUNT_INIT(0);
  refcount_inc(&r);
  EXPECT_EQ(static_cast<int>(refcount_read(&r)), REFCOUNT_SATURATED);
  EXPECT_EQ(refcount_saturation_events(REFCOUNT_ADD_UAF), before + 1);
}

TEST(RefcountSaturation, UnderflowSaturates) {
  const auto before = refcount_saturation_events(REFCOUNT_SUB_UAF);
  refcount_t r = REFCOUNT_INIT(1);
  EXPECT_FALSE(refcount_sub_and_test(2, &r));
  EXPECT_EQ(static_cast<int>(refcount_read(&r)), REFCOUNT_SATURATED);
  EXPECT_EQ(refcount_saturation_events(REFCOUNT_SUB_UAF), before + 1);
}

TEST(RefcountSaturation, DecToZeroLeaks) {
  const auto before = refcount_saturation_events(REFCOUNT_DEC_LEAK);
  refcount_t r = REFCOUNT_INIT(1);
  refcount_dec(&r);
  EXPECT_EQ(static_cast<int>(refcount_read(&r)), REFCOUNT_SATURATED);
  EXPECT_EQ(refcount_saturation_events(REFCOUNT_DEC_LEAK), before + 1);
}

TEST(RefcountSaturation, WarnsOncePerKind) {
  // ADD_NOT_ZERO_OVF is used by this test only: the first event prints, later ones do not.
  refcount_t r = REFCOUNT_INIT(REFCOUNT_MAX);
  testing::internal::CaptureStderr();
  EXPECT_TRUE(refcount_inc_not_zero(&r));
  std::string first = testing::internal::GetCapturedStderr();
  EXPECT_NE(first.find("refcount_t: saturated"), std::string::npos) << first;
  refcount_set(&r, REFCOUNT_MAX);
  testing::internal::CaptureStderr();
  EXPECT_TRUE(refcount_inc_not_zero(&r));
  EXPECT_TRUE(refcount_add_not_zero(INT_MAX, &r));
  std::string later = testing::internal::GetCapturedStderr();
  EXPECT_EQ(later, "");
  EXPECT_GE(refcount_saturation_events(REFCOUNT_ADD_NOT_ZERO_OVF), 3u);
}

TEST(RefcountConcurrency, ExactlyOneThreadSeesTheLastPut) {
  for (int round = 0; round < 20; ++round) {
    constexpr int threads = 4, per = 2000;
    refcount_t r = REFCOUNT_INIT(1);
    std::atomic<int> last{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) refcount_add(per, &r);
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&] {
        for (int i = 0; i < per; ++i) {
          refcount_inc(&r);
          if (refcount_dec_and_test(&r)) last.fetch_add(1);
          if (refcount_dec_and_test(&r)) last.fetch_add(1);
        }
      });
    for (auto& t : ts) t.join();
    EXPECT_EQ(refcount_read(&r), 1u);
    EXPECT_EQ(last.load(), 0);
    EXPECT_TRUE(refcount_dec_and_test(&r));
  }
}

}  // namespace
