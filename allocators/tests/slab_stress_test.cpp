// slab_stress_test: kmem_cache under concurrency, with more threads than cores: cross-thread
// frees through queues, random alloc/free/exchange, threads exiting while others allocate,
// bulk APIs from many threads. Objects carry plain (non-atomic) fields, so ThreadSanitizer
// sees any hand-out that the allocator did not order after the previous free.
#include <kprim/slab.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace {

using namespace kprim;

#if KPRIM_TSAN || defined(__SANITIZE_ADDRESS__)
constexpr unsigned scale = 2;  // sanitizers run 5-20x slower: fewer operations, same shapes
#else
constexpr unsigned scale = 1;
#endif

unsigned many_threads() { return std::max(4u, 4 * std::thread::hardware_concurrency()); }

struct tagged {
  std::uint32_t live;   // 0 while free (constructed state), 1 while allocated
  std::uint32_t owner;  // thread that allocated it
  std::uint64_t seq;
  std::uint64_t check;  // owner ^ seq: a torn or shared object shows a mismatch
  char payload[40];
};
static_assert(sizeof(tagged) == 64);

void tagged_ctor(void* p) { *static_cast<tagged*>(p) = tagged{}; }

tagged* take(kmem_cache_t* s, unsigned owner, std::uint64_t seq) {
  auto* t = static_cast<tagged*>(kmem_cache_alloc(s, GFP_KERNEL));
  if (t == nullptr) return nullptr;
  EXPECT_EQ(t->live, 0u) << "object handed out while still allocated";
  t->live = 1;
  t->owner = owner;
  t->seq = seq;
  t->check = owner ^ seq;
  return t;
}

void give(kmem_cache_t* s, tagged* t) {
  EXPECT_EQ(t->live, 1u);
  EXPECT_EQ(t->check, t->owner ^ t->seq);
  t->live = 0;  // back to constructed state
  kmem_cache_free(s, t);
}

/// A mutex-protected queue from producers to consumers.
struct channel {
  std::mutex m;
  std::deque<tagged*> q;
  void push(tagged* t) {
    std::lock_guard<std::mutex> g(m);
    q.push_back(t);
  }
  tagged* pop() {
    std::lock_guard<std::mutex> g(m);
    if (q.empty()) return nullptr;
    tagged* t = q.front();
    q.pop_front();
    return t;
  }
};

TEST(SlabStress, CrossThreadFreesProducerToConsumer) {
  const std::size_t mapped0 = kmem_mapped_bytes();
  kmem_cache_t* s = kmem_cache_create("xfree", sizeof(tagged), 0, SLAB_HWCACHE_ALIGN, tagged_ctor);
  const unsigned n = many_threads();  // half producers, half consumers
  const std::uint64_t per_producer = 150000 / scale;
  std::vector<channel> ch(n / 2);
  std::atomic<unsigned> producers_done{0};
  std::atomic<std::uint64_t> consumed{0};
  std::vector<std::thread> th;
  for (unsigned i = 0; i < n; ++i) {
    th.emplace_back([&, i] {
      channel& c = ch[i / 2];
      if (i % 2 == 0) {
        for (std::uint64_t k = 0; k < per_producer; ++k) {
          tagged* t = take(s, i, k);
          ASSERT_NE(t, nullptr);
          c.push(t);
        }
        producers_done.fetch_add(1);
      } else {
        for (;;) {
          if (tagged* t = c.pop()) {
            give(s, t);
            consumed.fetch_add(1, std::memory_order_relaxed);
          } else if (producers_done.load() == n / 2) {
            // Every push happened before that load: drain what is left and stop.
            while (tagged* r = c.pop()) {
              give(s, r);
              consumed.fetch_add(1, std::memory_order_relaxed);
            }
            break;
          } else {
            std::this_thread::yield();
          }
        }
      }
    });
  }
  for (auto& t : th) t.join();
  EXPECT_EQ(consumed.load(), per_producer * (n / 2));
  // Every thread exited, so every magazine went back to the slabs.
  EXPECT_EQ(kmem_cache_get_info(s).active_objs, 0u);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
  EXPECT_LE(kmem_mapped_bytes(), mapped0 + 4 * detail::slab_min_size);
}

TEST(SlabStress, RandomAllocFreeAndExchange) {
  kmem_cache_t* s = kmem_cache_create("random", sizeof(tagged), 0, 0, tagged_ctor);
  const unsigned n = many_threads();
  const unsigned ops = 200000 / scale;
  std::mutex xm;
  std::vector<tagged*> exchange;  // objects parked for any thread to free
  std::vector<std::thread> th;
  for (unsigned i = 0; i < n; ++i) {
    th.emplace_back([&, i] {
      std::mt19937_64 rng(i * 7919 + 1);
      std::vector<tagged*> mine;
      for (unsigned k = 0; k < ops; ++k) {
        const unsigned r = static_cast<unsigned>(rng() % 100);
        if (r < 50 || mine.empty()) {
          tagged* t = take(s, i, k);
          ASSERT_NE(t, nullptr);
          mine.push_back(t);
        } else if (r < 85) {
          const std::size_t j = rng() % mine.size();
          give(s, mine[j]);
          mine[j] = mine.back();
          mine.pop_back();
        } else {
          std::lock_guard<std::mutex> g(xm);
          if (r < 93 || exchange.empty()) {
            exchange.push_back(mine.back());
            mine.pop_back();
          } else {
            mine.push_back(exchange.back());
            exchange.pop_back();
          }
        }
      }
      for (tagged* t : mine) give(s, t);
    });
  }
  for (auto& t : th) t.join();
  for (tagged* t : exchange) give(s, t);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST(SlabStress, ThreadsExitWhileOthersAllocate) {
  kmem_cache_t* s = kmem_cache_create("churn", 256, 0, 0, nullptr);
  std::atomic<bool> stop{false};
  std::vector<std::thread> steady;
  for (unsigned i = 0; i < 2; ++i) {
    steady.emplace_back([&] {
      std::vector<void*> v;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 300; ++k) v.push_back(kmem_cache_alloc(s, GFP_KERNEL));
        for (void* p : v) kmem_cache_free(s, p);
        v.clear();
      }
    });
  }
  // Short-lived threads: each leaves objects in its magazines, flushed at exit.
  for (unsigned round = 0; round < 40 / scale + 2; ++round) {
    std::vector<std::thread> burst;
    for (unsigned i = 0; i < 6; ++i) {
      burst.emplace_back([&] {
        void* p[500];
        ASSERT_EQ(kmem_cache_alloc_bulk(s, GFP_KERNEL, 500, p), 500);
        for (void* q : p) std::memset(q, 0x33, 256);
        for (void* q : p) kmem_cache_free(s, q);
      });
    }
    for (auto& t : burst) t.join();
  }
  stop = true;
  for (auto& t : steady) t.join();
  EXPECT_EQ(kmem_cache_get_info(s).active_objs, 0u);
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

TEST(SlabStress, BulkFromManyThreadsWithRemoteFrees) {
  kmem_cache_t* s = kmem_cache_create("bulkmt", 96, 32, 0, nullptr);
  const unsigned n = many_threads();
  std::vector<std::vector<void*>> handoff(n);
  std::vector<std::thread> th;
  std::mutex m;
  for (unsigned i = 0; i < n; ++i) {
    th.emplace_back([&, i] {
      std::vector<void*> v(1000);
      for (unsigned round = 0; round < 40 / scale; ++round) {
        ASSERT_EQ(kmem_cache_alloc_bulk(s, GFP_KERNEL, v.size(), v.data()), static_cast<int>(v.size()));
        for (void* p : v) {
          EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 32, 0u);
          std::memset(p, static_cast<int>(i), 96);
        }
        for (void* p : v)
          ASSERT_EQ(static_cast<unsigned char*>(p)[95], static_cast<unsigned char>(i));
        // Half freed here in bulk, half handed to the next thread to free.
        kmem_cache_free_bulk(s, v.size() / 2, v.data());
        std::vector<void*> theirs;
        {
          std::lock_guard<std::mutex> g(m);
          auto& out = handoff[(i + 1) % n];
          out.insert(out.end(), v.begin() + v.size() / 2, v.end());
          theirs.swap(handoff[i]);
        }
        kmem_cache_free_bulk(s, theirs.size(), theirs.data());
      }
    });
  }
  for (auto& t : th) t.join();
  for (auto& h : handoff) kmem_cache_free_bulk(s, h.size(), h.data());
  EXPECT_EQ(kmem_cache_destroy(s), 0u);
}

}  // namespace
