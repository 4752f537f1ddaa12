// slab_stats.cpp: the statistics of kmem_cache (kmem_cache_get_info, /proc/slabinfo's
// format in slabinfo_show) and its tunables. Reads the slab layer and the depot under their
// locks; the fast paths keep no counters (the figures come from the slabs and the depot).
#include "slab_internal.hpp"

#include <cstdio>

namespace kprim {

using namespace detail;

void kmem_cache_set_tunables(kmem_cache_t* s, const kmem_cache_tunables& t) noexcept {
  {
    std::lock_guard<std::mutex> g(s->depot_lock);
    s->depot_max_full = t.depot_max_full;
  }
  std::lock_guard<std::mutex> g(s->node_lock);
  s->max_empty_slabs = t.max_empty_slabs;
}

slabinfo kmem_cache_get_info(kmem_cache_t* s) noexcept {
  slabinfo i{};
  std::snprintf(i.name, sizeof i.name, "%s", s->name);
  i.objsize = s->hot.object_size;
  i.size = s->size;
  i.objperslab = s->objperslab;
  i.pagesperslab = s->slab_size / page_size;
  i.magazine_rounds = s->debug ? 0 : s->magazine_rounds;
  drain_irq_frees(s);  // handlers' deferred frees count as free, as they are
  {
    std::lock_guard<std::mutex> g(s->depot_lock);
    i.depot_objs = s->depot_objs;
    i.depot_full = s->nr_full;
    i.depot_max_full = s->depot_max_full;
  }
  std::lock_guard<std::mutex> g(s->node_lock);
  i.empty_slabs = s->lists[SLAB_EMPTY].nr;
  i.active_slabs = s->lists[SLAB_PARTIAL].nr + s->lists[SLAB_FULL].nr;
  i.num_slabs = i.active_slabs + i.empty_slabs;
  i.num_objs = i.num_slabs * s->objperslab;
  i.active_objs = s->inuse_objs >= i.depot_objs ? s->inuse_objs - i.depot_objs : 0;
  i.rcu_pending_slabs = s->rcu_pending_slabs.load(std::memory_order_relaxed);
  i.mapped_bytes = (i.num_slabs + i.rcu_pending_slabs) * s->slab_size;
  i.max_empty_slabs = s->max_empty_slabs;
  return i;
}

void slabinfo_show(std::FILE* out) noexcept {
  std::fprintf(out, "slabinfo - version: 2.1 (kprim)\n");
  std::fprintf(out,
               "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : "
               "tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> "
               "<sharedavail> : depot <full_magazines> <objects>\n");
  std::lock_guard<std::mutex> g(g_registry_lock);
  for (kmem_cache_s* s : g_caches) {
    if (s == nullptr) continue;
    const slabinfo i = kmem_cache_get_info(s);
    std::fprintf(out, "%-17s %6zu %6zu %6zu %4zu %4zu : tunables %4zu %4u %4u : slabdata %6zu %6zu %6u : depot %4zu %6zu\n",
                 i.name, i.active_objs, i.num_objs, i.size, i.objperslab, i.pagesperslab,
                 i.magazine_rounds, i.depot_max_full, i.max_empty_slabs, i.active_slabs, i.num_slabs, 0u,
                 i.depot_full, i.depot_objs);
  }
}

}  // namespace kprim
