// kprim/llist.hpp: single-threaded semantics, ranges and macros, and the lock-free contract
// (many adders against del_all; many adders against one del_first consumer).
#include <kprim/llist.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

using namespace kprim;

struct litem {
  int data;
  llist_node node;
};
using V = std::vector<int>;

V values(llist_node* chain) {
  V out;
  for (litem& e : lentries<&litem::node>(chain)) out.push_back(e.data);
  return out;
}

TEST(Llist, AddReportsWhetherTheListWasEmpty) {
  LLIST_HEAD(h);
  litem a{1, {}}, b{2, {}};
  EXPECT_TRUE(llist_empty(&h));
  EXPECT_TRUE(llist_add(&a.node, &h));
  EXPECT_FALSE(llist_add(&b.node, &h));
  EXPECT_FALSE(llist_empty(&h));
}

TEST(Llist, DelAllReturnsNewestFirstAndEmpties) {
  LLIST_HEAD(h);
  litem e[3] = {{0, {}}, {1, {}}, {2, {}}};
  for (auto& i : e) llist_add(&i.node, &h);
  llist_node* all = llist_del_all(&h);
  EXPECT_TRUE(llist_empty(&h));
  EXPECT_EQ(values(all), (V{2, 1, 0}));
  EXPECT_EQ(values(llist_reverse_order(all)), (V{0, 1, 2}));
  EXPECT_EQ(llist_del_all(&h), nullptr);
}

TEST(Llist, DelFirst) {
  LLIST_HEAD(h);
  EXPECT_EQ(llist_del_first(&h), nullptr);
  litem a{1, {}}, b{2, {}};
  llist_add(&a.node, &h);
  llist_add(&b.node, &h);
  EXPECT_EQ(llist_del_first(&h), &b.node);
  llist_node* n = llist_del_first_init(&h);
  EXPECT_EQ(n, &a.node);
  EXPECT_FALSE(llist_on_list(&a.node));
  EXPECT_TRUE(llist_empty(&h));
}

TEST(Llist, AddBatchAndNonAtomicForms) {
  LLIST_HEAD(h);
  litem e[3] = {{0, {}}, {1, {}}, {2, {}}};
  e[0].node.next = &e[1].node;
  e[1].node.next = &e[2].node;
  EXPECT_TRUE(llist_add_batch(&e[0].node, &e[2].node, &h));
  EXPECT_EQ(values(h.first), (V{0, 1, 2}));
  llist_head h2;
  init_llist_head(&h2);
  litem x{9, {}};
  EXPECT_TRUE(__llist_add(&x.node, &h2));
  EXPECT_EQ(values(__llist_del_all(&h2)), (V{9}));
  EXPECT_TRUE(llist_empty(&h2));
}

TEST(Llist, OnList) {
  litem a{1, {}};
  LLIST_HEAD(h);
  init_llist_node(&a.node);
  EXPECT_FALSE(llist_on_list(&a.node));
  llist_add(&a.node, &h);
  EXPECT_TRUE(llist_on_list(&a.node));
}

TEST(LlistMacros, ForEachFamily) {
  LLIST_HEAD(h);
  litem e[3] = {{0, {}}, {1, {}}, {2, {}}};
  for (auto& i : e) llist_add(&i.node, &h);
  llist_node* first = llist_del_all(&h);
  V got;
  llist_node *p, *n;
  llist_for_each(p, first) got.push_back(llist_entry(p, litem, node)->data);
  EXPECT_EQ(got, (V{2, 1, 0}));
  got.clear();
  litem *pos, *tmp;
  llist_for_each_entry(pos, first, node) got.push_back(pos->data);
  EXPECT_EQ(got, (V{2, 1, 0}));
  got.clear();
  llist_for_each_safe(p, n, first) {
    got.push_back(llist_entry(p, litem, node)->data);
    p->next = nullptr;  // clobbering the current node is allowed
  }
  EXPECT_EQ(got, (V{2, 1, 0}));
  // Relink and walk with the entry-safe form.
  e[2].node.next = &e[1].node;
  e[1].node.next = &e[0].node;
  e[0].node.next = nullptr;
  got.clear();
  llist_for_each_entry_safe(pos, tmp, first, node) {
    got.push_back(pos->data);
    pos->node.next = nullptr;
  }
  EXPECT_EQ(got, (V{2, 1, 0}));
  got.clear();
  e[2].node.next = &e[1].node;
  for (litem& x : lentries_safe<&litem::node>(first)) {
    got.push_back(x.data);
    x.node.next = nullptr;
  }
  EXPECT_EQ(got, (V{2, 1}));
}

TEST(LlistConcurrency, ManyAddersOneDelAllConsumerLoseNothing) {
  constexpr int producers = 3, per = 20000;
  std::vector<litem> items(producers * per);
  LLIST_HEAD(h);
  std::atomic<int> finished{0};
  std::vector<char> seen(items.size(), 0);
  std::size_t got = 0;
  std::thread consumer([&] {
    for (;;) {
      bool last = finished.load(std::memory_order_acquire) == producers;
      for (litem& e : lentries_safe<&litem::node>(llist_del_all(&h))) {
        ASSERT_EQ(seen[e.data]++, 0);
        ++got;
      }
      if (last) break;
    }
  });
  std::vector<std::thread> ts;
  for (int t = 0; t < producers; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per; ++i) {
        litem& e = items[t * per + i];
        e.data = t * per + i;
        llist_add(&e.node, &h);
      }
      finished.fetch_add(1, std::memory_order_release);
    });
  for (auto& t : ts) t.join();
  consumer.join();
  EXPECT_EQ(got, items.size());
}

TEST(LlistConcurrency, ManyAddersOneDelFirstConsumerLoseNothing) {
  constexpr int producers = 3, per = 10000;
  std::vector<litem> items(producers * per);
  LLIST_HEAD(h);
  std::vector<std::thread> ts;
  for (int t = 0; t < producers; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per; ++i) {
        litem& e = items[t * per + i];
        e.data = t * per + i;
        llist_add(&e.node, &h);
      }
    });
  std::vector<char> seen(items.size(), 0);
  std::size_t got = 0;
  while (got < items.size()) {
    llist_node* n = llist_del_first(&h);
    if (!n) {
      std::this_thread::yield();
      continue;
    }
    litem* e = llist_entry(n, litem, node);
    ASSERT_EQ(seen[e->data]++, 0);
    ++got;
  }
  for (auto& t : ts) t.join();
  EXPECT_TRUE(llist_empty(&h));
}

}  // namespace
