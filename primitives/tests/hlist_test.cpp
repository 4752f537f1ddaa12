// kprim/hlist.hpp: every hlist operation (after the kernel's KUnit hlist tests), the
// ranges, and hash_32/hash_64.
#include <kprim/hlist.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace {

using namespace kprim;

struct hitem {
  int data;
  hlist_node node;
};
using V = std::vector<int>;

V check(hlist_head* h) {
  V out;
  hlist_node** pprev = &h->first;
  for (hlist_node* p = h->first; p; p = p->next) {
    EXPECT_EQ(p->pprev, pprev);
    pprev = &p->next;
    out.push_back(container_of(p, hitem, node)->data);
  }
  return out;
}

TEST(Hlist, InitAndEmpty) {
  HLIST_HEAD(h1);
  hlist_head h2 = HLIST_HEAD_INIT;
  hlist_head h3;
  INIT_HLIST_HEAD(&h3);
  EXPECT_TRUE(hlist_empty(&h1));
  EXPECT_TRUE(hlist_empty(&h2));
  EXPECT_TRUE(hlist_empty(&h3));
  hitem a{1, {}};
  hlist_add_head(&a.node, &h1);
  EXPECT_FALSE(hlist_empty(&h1));
}

TEST(Hlist, Unhashed) {
  hitem a{1, {}};
  HLIST_HEAD(h);
  INIT_HLIST_NODE(&a.node);
  EXPECT_TRUE(hlist_unhashed(&a.node));
  EXPECT_TRUE(hlist_unhashed_lockless(&a.node));
  hlist_add_head(&a.node, &h);
  EXPECT_FALSE(hlist_unhashed(&a.node));
  EXPECT_FALSE(hlist_unhashed_lockless(&a.node));
  hlist_del_init(&a.node);
  EXPECT_TRUE(hlist_unhashed(&a.node));
  hlist_del_init(&a.node);  // twice is fine
  EXPECT_TRUE(hlist_empty(&h));
}

TEST(Hlist, AddHeadBeforeBehind) {
  hitem a{1, {}}, b{2, {}}, c{3, {}}, d{4, {}};
  HLIST_HEAD(h);
  hlist_add_head(&b.node, &h);
  hlist_add_head(&a.node, &h);
  EXPECT_EQ(check(&h), (V{1, 2}));
  hlist_add_behind(&d.node, &b.node);  // at the end
  hlist_add_before(&c.node, &d.node);
  EXPECT_EQ(check(&h), (V{1, 2, 3, 4}));
  hitem e{0, {}};
  hlist_add_before(&e.node, &a.node);  // before the first: becomes first
  EXPECT_EQ(check(&h), (V{0, 1, 2, 3, 4}));
}

TEST(Hlist, DelAndDelInit) {
  hitem a{1, {}}, b{2, {}}, c{3, {}};
  HLIST_HEAD(h);
  for (hitem* i : {&c, &b, &a}) hlist_add_head(&i->node, &h);
  hlist_del(&b.node);
  EXPECT_EQ(check(&h), (V{1, 3}));
  hlist_del_init(&a.node);
  EXPECT_TRUE(hlist_unhashed(&a.node));
  EXPECT_EQ(check(&h), (V{3}));
  hlist_del(&c.node);
  EXPECT_TRUE(hlist_empty(&h));
}

TEST(Hlist, Fake) {
  hitem a{1, {}};
  INIT_HLIST_NODE(&a.node);
  EXPECT_FALSE(hlist_fake(&a.node));
  hlist_add_fake(&a.node);
  EXPECT_TRUE(hlist_fake(&a.node));
  EXPECT_FALSE(hlist_unhashed(&a.node));
}

TEST(Hlist, IsSingularNode) {
  hitem a{1, {}}, b{2, {}};
  HLIST_HEAD(h);
  hlist_add_head(&a.node, &h);
  EXPECT_TRUE(hlist_is_singular_node(&a.node, &h));
  hlist_add_head(&b.node, &h);
  EXPECT_FALSE(hlist_is_singular_node(&a.node, &h));
  EXPECT_FALSE(hlist_is_singular_node(&b.node, &h));
}

TEST(Hlist, MoveListAndSpliceInit) {
  hitem a{1, {}}, b{2, {}}, c{3, {}};
  HLIST_HEAD(h1);
  HLIST_HEAD(h2);
  hlist_add_head(&b.node, &h1);
  hlist_add_head(&a.node, &h1);
  hlist_move_list(&h1, &h2);
  EXPECT_TRUE(hlist_empty(&h1));
  EXPECT_EQ(check(&h2), (V{1, 2}));
  HLIST_HEAD(h3);
  hlist_add_head(&c.node, &h3);
  hlist_splice_init(&h2, &b.node, &h3);  // h2's nodes go in front of h3's
  EXPECT_TRUE(hlist_empty(&h2));
  EXPECT_EQ(check(&h3), (V{1, 2, 3}));
  EXPECT_EQ(hlist_count_nodes(&h3), 3u);
}

struct seq {
  hitem e[4];
  hlist_head h{};
  seq() {
    for (int i = 3; i >= 0; --i) {
      e[i].data = i;
      hlist_add_head(&e[i].node, &h);
    }
  }
};

TEST(HlistMacros, EntryAndEntrySafe) {
  seq s;
  EXPECT_EQ(hlist_entry(&s.e[2].node, hitem, node), &s.e[2]);
  EXPECT_EQ(hlist_entry_safe(s.h.first, hitem, node), &s.e[0]);
  hlist_node* none = nullptr;
  EXPECT_EQ(hlist_entry_safe(none, hitem, node), nullptr);
}

TEST(HlistMacros, ForEachFamily) {
  seq s;
  V got;
  hlist_node *p, *n;
  hlist_for_each(p, &s.h) got.push_back(hlist_entry(p, hitem, node)->data);
  EXPECT_EQ(got, (V{0, 1, 2, 3}));
  got.clear();
  hitem *pos, *tmp_unused = nullptr;
  (void)tmp_unused;
  hlist_for_each_entry(pos, &s.h, node) got.push_back(pos->data);
  EXPECT_EQ(got, (V{0, 1, 2, 3}));
  got.clear();
  pos = &s.e[1];
  hlist_for_each_entry_continue(pos, node) got.push_back(pos->data);
  EXPECT_EQ(got, (V{2, 3}));
  got.clear();
  pos = &s.e[1];
  hlist_for_each_entry_from(pos, node) got.push_back(pos->data);
  EXPECT_EQ(got, (V{1, 2, 3}));
  got.clear();
  hlist_for_each_entry_safe(pos, n, &s.h, node) {
    got.push_back(pos->data);
    if (pos->data % 2) hlist_del(&pos->node);
  }
  EXPECT_EQ(got, (V{0, 1, 2, 3}));
  EXPECT_EQ(check(&s.h), (V{0, 2}));
  hlist_for_each_safe(p, n, &s.h) hlist_del_init(p);
  EXPECT_TRUE(hlist_empty(&s.h));
}

TEST(HlistRanges, ForwardSafeAndFrom) {
  seq s;
  V got;
  for (hitem& e : hentries<&hitem::node>(s.h)) got.push_back(e.data);
  EXPECT_EQ(got, (V{0, 1, 2, 3}));
  static_assert(std::ranges::forward_range<decltype(hentries<&hitem::node>(s.h))>);
  got.clear();
  for (hitem& e : hentries_from<&hitem::node>(&s.e[2].node)) got.push_back(e.data);
  EXPECT_EQ(got, (V{2, 3}));
  got.clear();
  for (hitem& e : hentries_safe<&hitem::node>(s.h)) {
    got.push_back(e.data);
    hlist_del(&e.node);
  }
  EXPECT_EQ(got, (V{0, 1, 2, 3}));
  EXPECT_TRUE(hlist_empty(&s.h));
  const hlist_head& ch = s.h;
  EXPECT_TRUE(hentries<&hitem::node>(ch).begin() == hentries<&hitem::node>(ch).end());
}

TEST(HlistHash, GoldenRatioHashes) {
  // Values from include/linux/hash.h's own self-test style: top bits of val * GOLDEN_RATIO.
  EXPECT_EQ(hash_32(0, 10), 0u);
  EXPECT_EQ(hash_32(1, 32), 0x61C88647u);
  EXPECT_EQ(hash_64(1, 32), 0x61C88646u);
  for (std::uint32_t v = 0; v < 1000; ++v) {
    EXPECT_LT(hash_32(v, 8), 256u);
    EXPECT_LT(hash_64(v * 0x10001ull, 12), 4096u);
  }
}

TEST(HlistHash, SmallHashTable) {
  constexpr unsigned bits = 4;
  hlist_head table[1u << bits] = {};
  std::vector<hitem> items(100);
  for (int i = 0; i < 100; ++i) {
    items[i].data = i;
    hlist_add_head(&items[i].node, &table[hash_32(static_cast<std::uint32_t>(i), bits)]);
  }
  for (int key : {0, 42, 99}) {
    int found = 0;
    for (hitem& e : hentries<&hitem::node>(table[hash_32(static_cast<std::uint32_t>(key), bits)]))
      found += e.data == key;
    EXPECT_EQ(found, 1) << key;
  }
  std::size_t total = 0;
  for (auto& b : table) total += hlist_count_nodes(&b);
  EXPECT_EQ(total, 100u);
}

}  // namespace
