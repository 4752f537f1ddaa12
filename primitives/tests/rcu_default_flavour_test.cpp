// Built once per flavour target (kprim::rcu_memb, _qsbr, _mb, _bp): the target's define selects
// kprim::rcu_flavour, and the kernel-named functions work without naming a flavour.
#include <kprim/rcu.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace {

struct item {
  int value;
  kprim::rcu_head rcu{};
};

TEST(RcuDefaultFlavour, TargetSelectsItsFlavour) {
  EXPECT_EQ(kprim::rcu_flavour_name(), KPRIM_EXPECT_RCU_FLAVOUR);
  EXPECT_EQ(kprim::rcu_flavour::name, KPRIM_EXPECT_RCU_FLAVOUR);
}

TEST(RcuDefaultFlavour, KernelNamesWithoutFlavourArguments) {
  kprim::rcu_thread reg;
  item* gp = new item{1};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    kprim::rcu_thread r;
    while (!stop.load()) {
      {
        kprim::rcu_read_guard g;
        EXPECT_GE(kprim::rcu_dereference(gp)->value, 1);
      }
      kprim::rcu_quiescent_state();
    }
  });
  for (int i = 2; i < 50; ++i) kprim::kfree_rcu<&item::rcu>(kprim::rcu_replace_pointer(gp, new item{i}, true));
  kprim::synchronize_rcu();
  stop = true;
  reader.join();
  kprim::rcu_read_lock();
  EXPECT_EQ(kprim::rcu_dereference(gp)->value, 49);
  kprim::rcu_read_unlock();
  kprim::kfree_rcu_mightsleep(kprim::rcu_replace_pointer(gp, nullptr, true));
  kprim::rcu_barrier();
}

}  // namespace
