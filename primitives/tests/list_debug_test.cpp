// Debug-list builds (KPRIM_DEBUG_LIST=1, this binary always): deleted entries are poisoned
// as the kernel poisons them, and corruption is caught (the process aborts with a message).
#include <kprim/hlist.hpp>
#include <kprim/list.hpp>

#include <kprim/testing/stress.hpp>  // death_test_style(): qemu-user cannot re-exec

#include <gtest/gtest.h>

#if !KPRIM_DEBUG_LIST
#error "list_debug_test must be built with KPRIM_DEBUG_LIST=1"
#endif

namespace {

using namespace kprim;

struct item {
  int data;
  list_head list;
};

TEST(ListDebug, DelPoisonsTheEntry) {
  item a{1, {}};
  LIST_HEAD(list);
  list_add(&a.list, &list);
  list_del(&a.list);
  EXPECT_EQ(static_cast<void*>(a.list.next), LIST_POISON1);
  EXPECT_EQ(static_cast<void*>(a.list.prev), LIST_POISON2);
  EXPECT_TRUE(list_empty(&list));
}

TEST(ListDebug, HlistDelPoisonsTheNode) {
  struct hitem {
    int d;
    hlist_node node;
  } a{1, {}};
  HLIST_HEAD(h);
  hlist_add_head(&a.node, &h);
  hlist_del(&a.node);
  EXPECT_EQ(static_cast<void*>(a.node.next), LIST_POISON1);
  EXPECT_EQ(static_cast<void*>(a.node.pprev), LIST_POISON2);
  EXPECT_TRUE(hlist_empty(&h));
}

TEST(ListDebug, DelInitDoesNotPoison) {
  item a{1, {}};
  LIST_HEAD(list);
  list_add(&a.list, &list);
  list_del_init(&a.list);
  EXPECT_TRUE(list_empty(&a.list));
}

using ListDebugDeathTest = testing::Test;

TEST(ListDebugDeathTest, DoubleDeleteIsCaught) {
  GTEST_FLAG_SET(death_test_style, kprim::test::death_test_style());
  item a{1, {}};
  LIST_HEAD(list);
  list_add(&a.list, &list);
  list_del(&a.list);
  EXPECT_DEATH(list_del(&a.list), "list corruption: list_del: next is LIST_POISON1");
}

TEST(ListDebugDeathTest, DoubleAddIsCaught) {
  GTEST_FLAG_SET(death_test_style, kprim::test::death_test_style());
  item a{1, {}};
  LIST_HEAD(list);
  list_add(&a.list, &list);
  EXPECT_DEATH(list_add(&a.list, &list), "list corruption: list_add double add");
}

TEST(ListDebugDeathTest, CorruptedNeighbourIsCaught) {
  GTEST_FLAG_SET(death_test_style, kprim::test::death_test_style());
  item a{1, {}}, b{2, {}};
  LIST_HEAD(list);
  list_add_tail(&a.list, &list);
  list_add_tail(&b.list, &list);
  b.list.prev = &list;  // a stray write
  EXPECT_DEATH(list_del(&b.list), "list corruption: list_del: prev->next should be entry");
}

}  // namespace
