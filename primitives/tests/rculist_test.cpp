// Tests for kprim/rculist.hpp and kprim/rcu_hashtable.hpp: single-threaded list semantics of
// every update operation, then reader stress (readers walk while an updater adds, deletes and
// replaces entries and frees them through RCU; under ASan a premature free is a report).
#include <kprim/rcu.hpp>
#include <kprim/rcu_hashtable.hpp>
#include <kprim/rculist.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace {

struct item {
  static constexpr std::uint64_t alive = 0x5AFE5AFE5AFE5AFEull;
  explicit item(std::uint64_t k) : key(k) {}
  ~item() { __atomic_store_n(&magic, 0, __ATOMIC_RELAXED); }
  std::uint64_t magic = alive;
  std::uint64_t key;
  std::uint64_t key_copy = key;
  kprim::list_head node{};
  kprim::hlist_node hnode{};
  kprim::rcu_head rcu{};
};

std::vector<std::uint64_t> keys_of(kprim::list_head& head) {
  std::vector<std::uint64_t> v;
  for (item& e : kprim::rcu_entries<&item::node>(head)) v.push_back(e.key);
  return v;
}

TEST(RcuList, AddTailDelReplaceAndWalk) {
  kprim::rcu_thread reg;
  kprim::list_head head;
  kprim::INIT_LIST_HEAD_RCU(&head);
  EXPECT_TRUE(kprim::list_empty_rcu(&head));
  item a(1), b(2), c(3), d(4);
  kprim::list_add_tail_rcu(&b.node, &head);
  kprim::list_add_rcu(&a.node, &head);
  kprim::list_add_tail_rcu(&c.node, &head);
  {
    kprim::rcu_read_guard g;
    EXPECT_EQ(keys_of(head), (std::vector<std::uint64_t>{1, 2, 3}));
    item* first = list_first_or_null_rcu(&head, item, node);
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(first->key, 1u);
    std::uint64_t sum = 0;
    item* pos;
    list_for_each_entry_rcu(pos, &head, node) sum += pos->key;
    EXPECT_EQ(sum, 6u);
  }
  kprim::list_replace_rcu(&b.node, &d.node);
  EXPECT_EQ(keys_of(head), (std::vector<std::uint64_t>{1, 4, 3}));
  // A reader standing on a deleted entry still reaches the rest of the list.
  kprim::list_del_rcu(&a.node);
  EXPECT_EQ(a.node.next, &d.node);
  EXPECT_EQ(keys_of(head), (std::vector<std::uint64_t>{4, 3}));
  kprim::list_del_rcu(&c.node);
  kprim::list_del_rcu(&d.node);
  EXPECT_TRUE(kprim::list_empty_rcu(&head));
  EXPECT_EQ(list_first_or_null_rcu(&head, item, node), nullptr);
}

TEST(RcuHlist, AddDelReplaceAndWalk) {
  kprim::hlist_head h = HLIST_HEAD_INIT;
  item a(1), b(2), c(3), d(4), e(5);
  kprim::hlist_add_head_rcu(&a.hnode, &h);
  kprim::hlist_add_head_rcu(&b.hnode, &h);          // b a
  kprim::hlist_add_behind_rcu(&c.hnode, &a.hnode);  // b a c
  kprim::hlist_add_before_rcu(&d.hnode, &b.hnode);  // d b a c
  auto keys = [&] {
    std::vector<std::uint64_t> v;
    for (item& x : kprim::rcu_hentries<&item::hnode>(h)) v.push_back(x.key);
    return v;
  };
  EXPECT_EQ(keys(), (std::vector<std::uint64_t>{4, 2, 1, 3}));
  kprim::hlist_replace_rcu(&a.hnode, &e.hnode);  // d b e c
  EXPECT_EQ(keys(), (std::vector<std::uint64_t>{4, 2, 5, 3}));
  kprim::hlist_del_rcu(&d.hnode);
  EXPECT_EQ(d.hnode.next, &b.hnode);  // intact for readers on d
  kprim::hlist_del_init_rcu(&c.hnode);
  EXPECT_TRUE(kprim::hlist_unhashed(&c.hnode));
  kprim::hlist_del_init_rcu(&c.hnode);  // unhashed: no-op
  std::uint64_t sum = 0;
  item* pos;
  hlist_for_each_entry_rcu(pos, &h, hnode) sum += pos->key;
  EXPECT_EQ(sum, 7u);  // b e
  kprim::hlist_del_rcu(&b.hnode);
  kprim::hlist_del_rcu(&e.hnode);
  EXPECT_TRUE(kprim::hlist_empty(&h));
}

TEST(RcuHashtable, AddLookupDelete) {
  kprim::rcu_thread reg;
  auto ht = std::make_unique<kprim::hashtable<4>>();
  EXPECT_TRUE(kprim::hash_empty(*ht));
  std::vector<std::unique_ptr<item>> items;
  for (std::uint64_t k = 0; k < 100; ++k) {
    items.push_back(std::make_unique<item>(k));
    kprim::hash_add_rcu(*ht, &items.back()->hnode, k);
  }
  auto lookup = [&](std::uint64_t k) -> item* {
    kprim::rcu_read_guard g;
    for (item& e : kprim::hash_possible_rcu<&item::hnode>(*ht, k))
      if (e.key == k) return &e;
    return nullptr;
  };
  for (std::uint64_t k = 0; k < 100; ++k) EXPECT_EQ(lookup(k), items[k].get());
  EXPECT_EQ(lookup(1000), nullptr);
  kprim::hash_del_rcu(&items[7]->hnode);
  EXPECT_FALSE(kprim::hash_hashed(&items[7]->hnode));
  EXPECT_EQ(lookup(7), nullptr);
  item* found = nullptr;
  {
    kprim::rcu_read_guard g;
    item* obj;
    hash_for_each_possible_rcu(*ht, obj, hnode, std::uint64_t{8}) if (obj->key == 8) found = obj;
  }
  EXPECT_EQ(found, items[8].get());
  for (std::uint64_t k = 0; k < 100; ++k)
    if (k != 7) kprim::hash_del_rcu(&items[k]->hnode);
  EXPECT_TRUE(kprim::hash_empty(*ht));
  kprim::synchronize_rcu();
}

// Reader stress on a list: the updater keeps `keys` entries, repeatedly replacing, deleting
// and re-adding them, freeing the old ones with kfree_rcu() or synchronize_rcu() + delete.
// Readers check every entry they reach is alive and intact and that each walk ends.
TEST(RcuList, ReadersNeverSeeFreedEntries) {
  constexpr std::uint64_t keys = 16;
  constexpr int rounds = 20000;
  kprim::list_head head;
  kprim::INIT_LIST_HEAD_RCU(&head);
  std::mutex update_lock;  // serialises updaters, as the kernel's callers do
  {
    std::lock_guard l(update_lock);
    for (std::uint64_t k = 0; k < keys; ++k) kprim::list_add_tail_rcu(&(new item(k))->node, &head);
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, walks{0};
  std::atomic<int> running{0};  // readers that have completed a walk: updates start after all
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&] {
      kprim::rcu_thread reg;
      std::uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        kprim::rcu_read_guard g;
        std::uint64_t seen = 0;
        for (item& e : kprim::rcu_entries<&item::node>(head)) {
          if (e.magic != item::alive || e.key != e.key_copy || e.key >= keys) bad.fetch_add(1);
          if (++seen > 4 * keys) {  // a walk that does not end: a corrupted list
            bad.fetch_add(1);
            break;
          }
        }
        if (++n == 1) running.fetch_add(1);
      }
      walks.fetch_add(n);
    });
  while (running.load() != 2) std::this_thread::yield();
  kprim::rcu_thread reg;
  std::uint64_t rng = 12345;
  for (int i = 0; i < rounds; ++i) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    std::uint64_t pick = (rng >> 33) % keys;
    std::lock_guard l(update_lock);
    item* victim = nullptr;
    for (item& e : kprim::rcu_entries<&item::node>(head))
      if (e.key == pick) victim = &e;
    if (!victim) continue;
    if (i % 3 == 0) {
      auto* fresh = new item(pick);
      kprim::list_replace_rcu(&victim->node, &fresh->node);
    } else {
      kprim::list_del_rcu(&victim->node);
      kprim::list_add_tail_rcu(&(new item(pick))->node, &head);
    }
    if (i % 64 == 0) {
      kprim::synchronize_rcu();
      delete victim;
    } else {
      kprim::kfree_rcu<&item::rcu>(victim);
    }
  }
  stop = true;
  for (auto& t : readers) t.join();
  std::vector<std::uint64_t> left = keys_of(head);
  EXPECT_EQ(left.size(), keys);
  for (item& e : kprim::entries_safe<&item::node>(head)) {  // reads next before freeing e
    kprim::list_del_rcu(&e.node);
    kprim::kfree_rcu<&item::rcu>(&e);
  }
  kprim::rcu_barrier();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(walks.load(), 0u);
}

// The same on the hash table: lookups of random keys while the updater replaces entries.
TEST(RcuHashtable, LookupsNeverSeeFreedEntries) {
  constexpr std::uint64_t keys = 64;
  constexpr int rounds = 20000;
  auto ht = std::make_unique<kprim::hashtable<4>>();  // 16 buckets: chains of about 4
  std::mutex update_lock;
  for (std::uint64_t k = 0; k < keys; ++k) kprim::hash_add_rcu(*ht, &(new item(k))->hnode, k);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0}, missing{0};
  std::atomic<int> running{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&, r] {
      kprim::rcu_thread reg;
      std::uint64_t x = 99 + static_cast<std::uint64_t>(r);
      for (std::uint64_t n = 0; !stop.load(std::memory_order_relaxed);) {
        if (n++ == 1) running.fetch_add(1);  // after its first lookup
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const std::uint64_t k = (x >> 33) % keys;
        kprim::rcu_read_guard g;
        bool found = false;
        for (item& e : kprim::hash_possible_rcu<&item::hnode>(*ht, k)) {
          if (e.magic != item::alive || e.key != e.key_copy) bad.fetch_add(1);
          if (e.key == k) found = true;
        }
        // hlist_replace_rcu() is atomic for readers: a replaced key is never missing.
        if (!found) missing.fetch_add(1);
      }
    });
  while (running.load() < 2) std::this_thread::yield();
  kprim::rcu_thread reg;
  for (int i = 0; i < rounds; ++i) {
    const std::uint64_t k = static_cast<std::uint64_t>(i) % keys;
    std::lock_guard l(update_lock);
    item* old = nullptr;
    for (item& e : kprim::hash_possible_rcu<&item::hnode>(*ht, k))
      if (e.key == k) old = &e;
    ASSERT_NE(old, nullptr);
    kprim::hlist_replace_rcu(&old->hnode, &(new item(k))->hnode);
    kprim::kfree_rcu<&item::rcu>(old);
  }
  stop = true;
  for (auto& t : readers) t.join();
  for (auto& bucket : ht->heads)
    for (item& e : kprim::hentries_safe<&item::hnode>(bucket)) {
      kprim::hash_del_rcu(&e.hnode);
      kprim::kfree_rcu<&item::rcu>(&e);
    }
  kprim::rcu_barrier();
  EXPECT_TRUE(kprim::hash_empty(*ht));
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_EQ(missing.load(), 0u);
}

}  // namespace
