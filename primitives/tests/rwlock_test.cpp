// Behaviour of rwlock_t, the queued reader-writer lock (kprim/rwlock.hpp): the shared
// reader-writer contract (rw_contract.hpp) and the kernel's verbs. Part of test_rwlocks.
#include <kprim/rwlock.hpp>

#include "rw_contract.hpp"

#include <gtest/gtest.h>

namespace kprim::test {
using Qrwlocks = ::testing::Types<kprim::qrwlock>;
INSTANTIATE_TYPED_TEST_SUITE_P(Qrwlock, RwLockContract, Qrwlocks);
}  // namespace kprim::test

namespace {

TEST(Qrwlock, KernelVerbs) {
  kprim::rwlock_t l;
  kprim::read_lock(&l);
  EXPECT_FALSE(kprim::write_trylock(&l));
  EXPECT_TRUE(kprim::read_trylock(&l));
  kprim::read_unlock(&l);
  kprim::read_unlock(&l);
  kprim::write_lock(&l);
  EXPECT_FALSE(kprim::read_trylock(&l));
  kprim::write_unlock(&l);
  EXPECT_FALSE(l.is_locked());
}

}  // namespace
