// kprim/list.hpp: every list_head operation, modelled on the kernel's KUnit list tests
// (lib/list-test.c), plus the C++ ranges.
#include <kprim/list.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <ranges>
#include <vector>

namespace {

using namespace kprim;

struct item {
  int data;
  list_head list;
};

// Every link of a list is consistent in both directions; returns the entries' data in order.
std::vector<int> check(list_head* head) {
  std::vector<int> out;
  for (list_head* p = head->next; p != head; p = p->next) {
    EXPECT_EQ(p->next->prev, p);
    EXPECT_EQ(p->prev->next, p);
    out.push_back(container_of(p, item, list)->data);
  }
  EXPECT_EQ(head->next->prev, head);
  EXPECT_EQ(head->prev->next, head);
  return out;
}
using V = std::vector<int>;

TEST(List, Init) {
  list_head list1 = LIST_HEAD_INIT(list1);
  LIST_HEAD(list2);
  list_head list3;
  INIT_LIST_HEAD(&list3);
  EXPECT_TRUE(list_empty(&list1));
  EXPECT_TRUE(list_empty(&list2));
  EXPECT_TRUE(list_empty(&list3));
  EXPECT_TRUE(list_empty_careful(&list3));
}

TEST(List, AddAndAddTail) {
  item a{1, {}}, b{2, {}}, c{3, {}};
  LIST_HEAD(list);
  list_add(&a.list, &list);
  list_add(&b.list, &list);  // stack order
  list_add_tail(&c.list, &list);
  EXPECT_EQ(check(&list), (V{2, 1, 3}));
}

TEST(List, Del) {
  item a{1, {}}, b{2, {}};
  LIST_HEAD(list);
  list_add_tail(&a.list, &list);
  list_add_tail(&b.list, &list);
  list_del(&a.list);
  EXPECT_EQ(check(&list), (V{2}));
  list_del(&b.list);
  EXPECT_TRUE(list_empty(&list));
}

TEST(List, ReplaceAndReplaceInit) {
  item a{1, {}}, b{2, {}}, r{9, {}};
  LIST_HEAD(list);
  list_add_tail(&a.list, &list);
  list_add_tail(&b.list, &list);
  list_replace(&a.list, &r.list);
  EXPECT_EQ(check(&list), (V{9, 2}));
  list_replace_init(&b.list, &a.list);
  EXPECT_EQ(check(&list), (V{9, 1}));
  EXPECT_TRUE(list_empty(&b.list));
}

TEST(List, Swap) {
  item a{1, {}}, b{2, {}}, c{3, {}};
  LIST_HEAD(list);
  for (item* i : {&a, &b, &c}) list_add_tail(&i->list, &list);
  list_swap(&a.list, &c.list);
  EXPECT_EQ(check(&list), (V{3, 2, 1}));
  list_swap(&b.list, &a.list);  // adjacent
  EXPECT_EQ(check(&list), (V{3, 1, 2}));
}

TEST(List, DelInitAndDelInitCareful) {
  item a{1, {}}, b{2, {}};
  LIST_HEAD(list);
  list_add_tail(&a.list, &list);
  list_add_tail(&b.list, &list);
  list_del_init(&a.list);
  EXPECT_TRUE(list_empty(&a.list));
  EXPECT_EQ(check(&list), (V{2}));
  list_del_init_careful(&b.list);
  EXPECT_TRUE(list_empty_careful(&b.list));
  EXPECT_TRUE(list_empty(&list));
}

TEST(List, MoveAndMoveTail) {
  item a{1, {}}, b{2, {}}, c{3, {}};
  LIST_HEAD(l1);
  LIST_HEAD(l2);
  list_add_tail(&a.list, &l1);
  list_add_tail(&b.list, &l1);
  list_add_tail(&c.list, &l2);
  list_move(&a.list, &l2);
  EXPECT_EQ(check(&l1), (V{2}));
  EXPECT_EQ(check(&l2), (V{1, 3}));
  list_move_tail(&b.list, &l2);
  EXPECT_TRUE(list_empty(&l1));
  EXPECT_EQ(check(&l2), (V{1, 3, 2}));
}

TEST(List, BulkMoveTail) {
  item e[5] = {{0, {}}, {1, {}}, {2, {}}, {3, {}}, {4, {}}};
  item x{10, {}}, y{11, {}};
  LIST_HEAD(l1);
  LIST_HEAD(l2);
  for (auto& i : e) list_add_tail(&i.list, &l1);
  list_add_tail(&x.list, &l2);
  list_add_tail(&y.list, &l2);
  list_bulk_move_tail(&l2, &e[1].list, &e[3].list);
  EXPECT_EQ(check(&l1), (V{0, 4}));
  EXPECT_EQ(check(&l2), (V{10, 11, 1, 2, 3}));
}

TEST(List, IsHeadIsFirstIsLast) {
  item a{1, {}}, b{2, {}}, c{3, {}};
  LIST_HEAD(list);
  for (item* i : {&a, &b, &c}) list_add_tail(&i->list, &list);
  EXPECT_TRUE(list_is_head(&list, &list));
  EXPECT_FALSE(list_is_head(&a.list, &list));
  EXPECT_TRUE(list_is_first(&a.list, &list));
  EXPECT_FALSE(list_is_first(&b.list, &list));
  EXPECT_TRUE(list_is_last(&c.list, &list));
  EXPECT_FALSE(list_is_last(&b.list, &list));
}

TEST(List, EmptyAndEmptyCareful) {
  item a{1, {}};
  LIST_HEAD(l1);
  LIST_HEAD(l2);
  list_add(&a.list, &l1);
  EXPECT_FALSE(list_empty(&l1));
  EXPECT_TRUE(list_empty(&l2));
  EXPECT_FALSE(list_empty_careful(&l1));
  EXPECT_TRUE(list_empty_careful(&l2));
}

TEST(List, RotateLeftAndRotateToFront) {
  item e[4] = {{0, {}}, {1, {}}, {2, {}}, {3, {}}};
  LIST_HEAD(list);
  list_rotate_left(&list);  // empty: nothing
  EXPECT_TRUE(list_empty(&list));
  for (auto& i : e) list_add_tail(&i.list, &list);
  list_rotate_left(&list);
  EXPECT_EQ(check(&list), (V{1, 2, 3, 0}));
  list_rotate_to_front(&e[3].list, &list);
  EXPECT_EQ(check(&list), (V{3, 0, 1, 2}));
}

TEST(List, IsSingular) {
  item a{1, {}}, b{2, {}};
  LIST_HEAD(list);
  EXPECT_FALSE(list_is_singular(&list));
  list_add(&a.list, &list);
  EXPECT_TRUE(list_is_singular(&list));
  list_add(&b.list, &list);
  EXPECT_FALSE(list_is_singular(&list));
}

TEST(List, CutPosition) {
  item e[3] = {{0, {}}, {1, {}}, {2, {}}};
  LIST_HEAD(l1);
  LIST_HEAD(l2);
  for (auto& i : e) list_add_tail(&i.list, &l1);
  list_cut_position(&l2, &l1, &e[1].list);
  EXPECT_EQ(check(&l2), (V{0, 1}));
  EXPECT_EQ(check(&l1), (V{2}));
  // entry == head: nothing moves, list is initialised empty.
  LIST_HEAD(l3);
  list_cut_position(&l3, &l1, &l1);
  EXPECT_TRUE(list_empty(&l3));
  EXPECT_EQ(check(&l1), (V{2}));
  // Singular list, cut at its only entry.
  list_cut_position(&l3, &l1, &e[2].list);
  EXPECT_TRUE(list_empty(&l1));
  EXPECT_EQ(check(&l3), (V{2}));
  // Empty list: nothing.
  LIST_HEAD(l4);
  list_cut_position(&l4, &l1, &l1);
  EXPECT_TRUE(list_empty(&l1));
}

TEST(List, CutBefore) {
  item e[3] = {{0, {}}, {1, {}}, {2, {}}};
  LIST_HEAD(l1);
  LIST_HEAD(l2);
  for (auto& i : e) list_add_tail(&i.list, &l1);
  list_cut_before(&l2, &l1, &e[1].list);
  EXPECT_EQ(check(&l2), (V{0}));
  EXPECT_EQ(check(&l1), (V{1, 2}));
  LIST_HEAD(l3);
  list_cut_before(&l3, &l1, &e[1].list);  // entry is the first: nothing moves
  EXPECT_TRUE(list_empty(&l3));
  EXPECT_EQ(check(&l1), (V{1, 2}));
}

struct splice_fixture {
  item e[5] = {{0, {}}, {1, {}}, {2, {}}, {3, {}}, {4, {}}};
  list_head l1{}, l2{};  // value-initialised: GCC cannot see TSan-instrumented INIT_LIST_HEAD stores
  splice_fixture() {
    INIT_LIST_HEAD(&l1);
    INIT_LIST_HEAD(&l2);
    list_add_tail(&e[0].list, &l1);
    list_add_tail(&e[1].list, &l1);
    list_add_tail(&e[2].list, &l2);
    list_add_tail(&e[3].list, &l2);
    list_add_tail(&e[4].list, &l1);
  }
};

TEST(List, Splice) {
  splice_fixture f;
  list_splice(&f.l2, &f.e[1].list);  // after e[1]
  EXPECT_EQ(check(&f.l1), (V{0, 1, 2, 3, 4}));
}
TEST(List, SpliceTail) {
  splice_fixture f;
  list_splice_tail(&f.l2, &f.e[4].list);  // before e[4]
  EXPECT_EQ(check(&f.l1), (V{0, 1, 2, 3, 4}));
}
TEST(List, SpliceInit) {
  splice_fixture f;
  list_splice_init(&f.l2, &f.e[1].list);
  EXPECT_EQ(check(&f.l1), (V{0, 1, 2, 3, 4}));
  EXPECT_TRUE(list_empty_careful(&f.l2));
  LIST_HEAD(empty);
  list_splice_init(&empty, &f.l1);  // splicing an empty list changes nothing
  EXPECT_EQ(check(&f.l1), (V{0, 1, 2, 3, 4}));
}
TEST(List, SpliceTailInit) {
  splice_fixture f;
  list_splice_tail_init(&f.l2, &f.e[4].list);
  EXPECT_EQ(check(&f.l1), (V{0, 1, 2, 3, 4}));
  EXPECT_TRUE(list_empty_careful(&f.l2));
}

TEST(List, CountNodes) {
  item e[4] = {};
  LIST_HEAD(list);
  EXPECT_EQ(list_count_nodes(&list), 0u);
  for (auto& i : e) list_add_tail(&i.list, &list);
  EXPECT_EQ(list_count_nodes(&list), 4u);
}

TEST(ListEntry, EntryFirstLastNextPrev) {
  item a{1, {}}, b{2, {}};
  LIST_HEAD(list);
  EXPECT_EQ(list_first_entry_or_null(&list, item, list), nullptr);
  list_add_tail(&a.list, &list);
  list_add_tail(&b.list, &list);
  EXPECT_EQ(list_entry(&a.list, item, list), &a);
  EXPECT_EQ(list_first_entry(&list, item, list), &a);
  EXPECT_EQ(list_last_entry(&list, item, list), &b);
  EXPECT_EQ(list_first_entry_or_null(&list, item, list), &a);
  item* pos = &a;
  EXPECT_EQ(list_next_entry(pos, list), &b);
  pos = &b;
  EXPECT_EQ(list_prev_entry(pos, list), &a);
  EXPECT_EQ(list_next_entry_circular(pos, &list, list), &a);
  pos = &a;
  EXPECT_EQ(list_prev_entry_circular(pos, &list, list), &b);
}

TEST(ListEntry, EntryIsHead) {
  item a{1, {}};
  LIST_HEAD(list);
  list_add(&a.list, &list);
  item* pos = &a;
  EXPECT_FALSE(list_entry_is_head(pos, &list, list));
  pos = list_next_entry(pos, list);
  EXPECT_TRUE(list_entry_is_head(pos, &list, list));
}

struct seq_fixture {
  item e[5];
  list_head list;
  seq_fixture() {
    INIT_LIST_HEAD(&list);
    for (int i = 0; i < 5; ++i) {
      e[i].data = i;
      list_add_tail(&e[i].list, &list);
    }
  }
};

TEST(ListMacros, ForEachAndPrev) {
  seq_fixture f;
  list_head* pos;
  V got;
  list_for_each(pos, &f.list) got.push_back(list_entry(pos, item, list)->data);
  EXPECT_EQ(got, (V{0, 1, 2, 3, 4}));
  got.clear();
  list_for_each_prev(pos, &f.list) got.push_back(list_entry(pos, item, list)->data);
  EXPECT_EQ(got, (V{4, 3, 2, 1, 0}));
}

TEST(ListMacros, ForEachSafeAndPrevSafe) {
  seq_fixture f;
  list_head *pos, *n;
  int i = 0;
  list_for_each_safe(pos, n, &f.list) {
    EXPECT_EQ(list_entry(pos, item, list)->data, i++);
    if (i % 2) list_del(pos);
  }
  EXPECT_EQ(check(&f.list), (V{1, 3}));
  list_for_each_prev_safe(pos, n, &f.list) list_del(pos);
  EXPECT_TRUE(list_empty(&f.list));
}

TEST(ListMacros, ForEachEntryFamily) {
  seq_fixture f;
  item* pos;
  item* n;
  V got;
  list_for_each_entry(pos, &f.list, list) got.push_back(pos->data);
  EXPECT_EQ(got, (V{0, 1, 2, 3, 4}));
  got.clear();
  list_for_each_entry_reverse(pos, &f.list, list) got.push_back(pos->data);
  EXPECT_EQ(got, (V{4, 3, 2, 1, 0}));
  got.clear();
  pos = &f.e[1];
  list_for_each_entry_continue(pos, &f.list, list) got.push_back(pos->data);
  EXPECT_EQ(got, (V{2, 3, 4}));
  got.clear();
  pos = &f.e[3];
  list_for_each_entry_continue_reverse(pos, &f.list, list) got.push_back(pos->data);
  EXPECT_EQ(got, (V{2, 1, 0}));
  got.clear();
  pos = &f.e[2];
  list_for_each_entry_from(pos, &f.list, list) got.push_back(pos->data);
  EXPECT_EQ(got, (V{2, 3, 4}));
  got.clear();
  pos = &f.e[2];
  list_for_each_entry_from_reverse(pos, &f.list, list) got.push_back(pos->data);
  EXPECT_EQ(got, (V{2, 1, 0}));
  got.clear();
  list_for_each_entry_safe(pos, n, &f.list, list) {
    got.push_back(pos->data);
    if (pos->data == 2) list_del(&pos->list);
  }
  EXPECT_EQ(got, (V{0, 1, 2, 3, 4}));
  EXPECT_EQ(check(&f.list), (V{0, 1, 3, 4}));
  got.clear();
  list_for_each_entry_safe_reverse(pos, n, &f.list, list) {
    got.push_back(pos->data);
    list_del_init(&pos->list);
  }
  EXPECT_EQ(got, (V{4, 3, 1, 0}));
  EXPECT_TRUE(list_empty(&f.list));
}

TEST(ListMacros, SafeContinueAndFrom) {
  seq_fixture f;
  item *pos = &f.e[1], *n;
  V got;
  list_for_each_entry_safe_continue(pos, n, &f.list, list) {
    got.push_back(pos->data);
    list_del(&pos->list);
  }
  EXPECT_EQ(got, (V{2, 3, 4}));
  EXPECT_EQ(check(&f.list), (V{0, 1}));
  got.clear();
  pos = &f.e[1];
  list_for_each_entry_safe_from(pos, n, &f.list, list) {
    got.push_back(pos->data);
    list_del(&pos->list);
  }
  EXPECT_EQ(got, (V{1}));
  EXPECT_EQ(check(&f.list), (V{0}));
  item* none = nullptr;
  item* start = list_prepare_entry(none, &f.list, list);
  EXPECT_TRUE(list_entry_is_head(start, &f.list, list));
}

TEST(ListRanges, ForwardReverseAndViews) {
  seq_fixture f;
  V got;
  for (item& e : entries<&item::list>(f.list)) got.push_back(e.data);
  EXPECT_EQ(got, (V{0, 1, 2, 3, 4}));
  got.clear();
  for (item& e : entries_reverse<&item::list>(f.list)) got.push_back(e.data);
  EXPECT_EQ(got, (V{4, 3, 2, 1, 0}));
  got.clear();
  // Bidirectional: std::views compose.
  auto r = entries<&item::list>(f.list);
  static_assert(std::ranges::bidirectional_range<decltype(r)>);
  static_assert(std::ranges::view<decltype(r)>);
  for (item& e : r | std::views::reverse | std::views::take(2)) got.push_back(e.data);
  EXPECT_EQ(got, (V{4, 3}));
  got.clear();
  for (int d : r | std::views::transform(&item::data) | std::views::filter([](int x) { return x % 2 == 0; }))
    got.push_back(d);
  EXPECT_EQ(got, (V{0, 2, 4}));
  EXPECT_EQ(std::ranges::distance(r), 5);
  auto it = std::ranges::find(r, 3, &item::data);
  EXPECT_EQ(&*it, &f.e[3]);
  EXPECT_FALSE(r.empty());
  for (item& e : r) e.data *= 10;
  const list_head& cl = f.list;
  got.clear();
  for (const item& e : entries<&item::list>(cl)) got.push_back(e.data);
  EXPECT_EQ(got, (V{0, 10, 20, 30, 40}));
}

TEST(ListRanges, EmptyList) {
  LIST_HEAD(list);
  EXPECT_TRUE(entries<&item::list>(list).empty());
  int n = 0;
  for ([[maybe_unused]] item& e : entries<&item::list>(list)) ++n;
  for ([[maybe_unused]] item& e : entries_safe<&item::list>(list)) ++n;
  for ([[maybe_unused]] item& e : entries_safe_reverse<&item::list>(list)) ++n;
  EXPECT_EQ(n, 0);
}

TEST(ListRanges, SafeFormsAllowDeletingTheCurrentEntry) {
  seq_fixture f;
  V got;
  for (item& e : entries_safe<&item::list>(f.list)) {
    got.push_back(e.data);
    if (e.data != 2) list_del(&e.list);
  }
  EXPECT_EQ(got, (V{0, 1, 2, 3, 4}));
  EXPECT_EQ(check(&f.list), (V{2}));

  seq_fixture g;
  LIST_HEAD(other);
  got.clear();
  for (item& e : entries_safe_reverse<&item::list>(g.list)) {
    got.push_back(e.data);
    list_move_tail(&e.list, &other);  // moving elsewhere is fine too
  }
  EXPECT_EQ(got, (V{4, 3, 2, 1, 0}));
  EXPECT_TRUE(list_empty(&g.list));
  EXPECT_EQ(check(&other), (V{4, 3, 2, 1, 0}));
}

TEST(ListRanges, LruMoveToFront) {
  // The access pattern bench_list measures: touch an entry, move it to the front.
  seq_fixture f;
  for (int touch : {3, 0, 3, 4}) list_move(&f.e[touch].list, &f.list);
  EXPECT_EQ(check(&f.list), (V{4, 3, 0, 1, 2}));
  EXPECT_EQ(list_last_entry(&f.list, item, list)->data, 2);  // the eviction victim
}

}  // namespace
