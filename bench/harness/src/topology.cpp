// The machine's shape for the harness (kprim/bench/topology.hpp): PU orders for the pin
// policies, distance classes of PU pairs, and the default thread sweep.
#include <kprim/bench/topology.hpp>

#include <hwloc.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace kprim::bench {

const char* class_name(distance_class c) noexcept {
  switch (c) {
    case distance_class::smt:
      return "smt";
    case distance_class::core:
      return "core";
    case distance_class::l3:
      return "l3";
    case distance_class::package:
      return "package";
    case distance_class::numa:
      return "numa";
  }
  return "numa";
}

struct topology::impl {
  hwloc_topology_t topo = nullptr;
  std::vector<hwloc_obj_t> by_os;               // PU objects indexed by OS index (nullptr: none)
  std::vector<hwloc_obj_t> pus;                 // allowed PUs in logical order
  std::vector<std::vector<hwloc_obj_t>> cores;  // PUs of each core, cores in spread order
  std::vector<unsigned> core_of_os;             // OS index -> index into `cores`
  std::vector<unsigned> compact, spread;
  bool this_system = false;
  hardware_facts facts;
  mutable std::once_flag pairs_once;
  mutable std::vector<pu_pair> pairs;

  ~impl() {
    if (topo != nullptr) hwloc_topology_destroy(topo);
  }

  /// Load (optionally from a synthetic description) and precompute everything.
  /// Returns false if hwloc failed to initialise or load.
  bool load(const std::string* synthetic) {
    if (hwloc_topology_init(&topo) != 0) {
      topo = nullptr;
      return false;
    }
    if (synthetic != nullptr && hwloc_topology_set_synthetic(topo, synthetic->c_str()) != 0) return false;
    if (hwloc_topology_load(topo) != 0) return false;
    this_system = hwloc_topology_is_thissystem(topo) != 0;
    read_facts();
    hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(topo);
    const int npu = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    for (int i = 0; i < npu; ++i) {
      hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, static_cast<unsigned>(i));
      if (pu == nullptr || !hwloc_bitmap_isset(allowed, pu->os_index)) continue;
      pus.push_back(pu);
      if (pu->os_index >= by_os.size()) by_os.resize(pu->os_index + 1, nullptr);
      by_os[pu->os_index] = pu;
    }
    for (hwloc_obj_t pu : pus) compact.push_back(pu->os_index);
    build_spread();
    return true;
  }

  void read_facts() {
    facts.packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
    facts.cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    facts.pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    if (hwloc_obj_t pkg = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, 0))
      if (const char* m = hwloc_obj_get_info_by_name(pkg, "CPUModel")) facts.model = m;
    const struct {
      hwloc_obj_type_t type;
      const char* name;
    } levels[] = {
        {HWLOC_OBJ_L1CACHE, "L1d"}, {HWLOC_OBJ_L2CACHE, "L2"}, {HWLOC_OBJ_L3CACHE, "L3"}};
    for (const auto& lv : levels) {
      hwloc_obj_t c = hwloc_get_obj_by_type(topo, lv.type, 0);
      if (c == nullptr || c->attr == nullptr) continue;
      facts.caches.emplace_back(lv.name, c->attr->cache.size);
    }
  }

  /// The core a PU belongs to (the PU itself when hwloc reports no core above it).
  static hwloc_obj_t core_of(hwloc_obj_t pu) noexcept {
    for (hwloc_obj_t o = pu->parent; o != nullptr; o = o->parent)
      if (o->type == HWLOC_OBJ_CORE) return o;
    return pu;
  }

  /// Cores (or core-less PUs) holding allowed PUs below `o`, interleaved child by child: the
  /// first core of every child, then the second of every child, ... recursively, so that
  /// consecutive entries are as far apart in the tree as possible.
  void interleaved_cores(hwloc_obj_t o, std::vector<hwloc_obj_t>& out) const {
    if (o->type == HWLOC_OBJ_CORE || o->type == HWLOC_OBJ_PU) {
      if (o->type == HWLOC_OBJ_CORE || core_of(o) == o) out.push_back(o);
      return;
    }
    std::vector<std::vector<hwloc_obj_t>> lists;
    for (unsigned i = 0; i < o->arity; ++i) {
      std::vector<hwloc_obj_t> l;
      interleaved_cores(o->children[i], l);
      if (!l.empty()) lists.push_back(std::move(l));
    }
    for (std::size_t k = 0;; ++k) {
      bool any = false;
      for (const auto& l : lists)
        if (k < l.size()) {
          out.push_back(l[k]);
          any = true;
        }
      if (!any) break;
    }
  }

  void build_spread() {
    std::vector<hwloc_obj_t> core_objs;
    interleaved_cores(hwloc_get_root_obj(topo), core_objs);
    core_of_os.assign(by_os.size(), 0);
    for (hwloc_obj_t c : core_objs) {
      std::vector<hwloc_obj_t> mine;
      for (hwloc_obj_t pu : pus)
        if (core_of(pu) == c) mine.push_back(pu);
      if (mine.empty()) continue;  // a core whose PUs are all disallowed
      for (hwloc_obj_t pu : mine) core_of_os[pu->os_index] = static_cast<unsigned>(cores.size());
      cores.push_back(std::move(mine));
    }
    for (std::size_t k = 0; spread.size() < pus.size(); ++k) {
      const std::size_t before = spread.size();
      for (const auto& c : cores)
        if (k < c.size()) spread.push_back(c[k]->os_index);
      if (spread.size() == before) break;  // cannot happen: every allowed PU is in a core
    }
  }

  [[nodiscard]] hwloc_obj_t pu(unsigned os) const noexcept { return os < by_os.size() ? by_os[os] : nullptr; }

  [[nodiscard]] distance_class distance(hwloc_obj_t a, hwloc_obj_t b) const noexcept {
    if (a == nullptr || b == nullptr) return distance_class::numa;
    if (a == b) return distance_class::smt;
    if (hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, a) !=
            hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, b) ||
        !hwloc_bitmap_isequal(a->nodeset, b->nodeset))
      return distance_class::numa;
    hwloc_obj_t ca = hwloc_get_common_ancestor_obj(topo, a, b);
    for (hwloc_obj_t o = ca; o != nullptr; o = o->parent)
      if (o->type == HWLOC_OBJ_CORE) return distance_class::smt;
    for (hwloc_obj_t o = ca; o != nullptr; o = o->parent)
      if (o->type == HWLOC_OBJ_L3CACHE) return o == ca ? distance_class::l3 : distance_class::core;
    // No L3 at or above the common ancestor: a shared L1/L2 is still a cluster below the L3.
    if (hwloc_obj_type_is_cache(ca->type) && ca->attr != nullptr && ca->attr->cache.depth <= 2)
      return distance_class::core;
    return distance_class::package;
  }

  void compute_pairs() const {
    bool found[5] = {};
    auto add = [&](hwloc_obj_t a, hwloc_obj_t b) {
      const distance_class c = distance(a, b);
      if (found[static_cast<int>(c)]) return;
      found[static_cast<int>(c)] = true;
      pairs.push_back({a->os_index, b->os_index, c});
    };
    // Cores in logical order (that of their first PU); two PUs of one core pair as smt, and
    // any two PUs of two cores have the class of the cores' first PUs.
    std::vector<const std::vector<hwloc_obj_t>*> by_logical;
    for (const auto& c : cores) by_logical.push_back(&c);
    std::sort(by_logical.begin(), by_logical.end(),
              [](auto* x, auto* y) { return (*x)[0]->logical_index < (*y)[0]->logical_index; });
    for (auto* c : by_logical)
      if (c->size() >= 2) {
        add((*c)[0], (*c)[1]);
        break;
      }
    for (std::size_t i = 0; i < by_logical.size(); ++i)
      for (std::size_t j = i + 1; j < by_logical.size(); ++j) {
        add((*by_logical[i])[0], (*by_logical[j])[0]);
        if (pairs.size() == std::size(all_distance_classes)) goto done;
      }
  done:
    std::sort(pairs.begin(), pairs.end(), [](const pu_pair& x, const pu_pair& y) { return x.cls < y.cls; });
  }
};

topology::topology() : p_(std::make_unique<impl>()) {
  if (!p_->load(nullptr)) p_ = std::make_unique<impl>();  // empty: pu_count() == 0
}

topology::topology(std::string_view synthetic) : p_(std::make_unique<impl>()) {
  const std::string desc(synthetic);
  if (!p_->load(&desc) || p_->pus.empty())
    throw std::invalid_argument("hwloc rejected the synthetic topology '" + desc + "'");
}

topology::~topology() = default;

unsigned topology::pu_count() const noexcept { return static_cast<unsigned>(p_->pus.size()); }
unsigned topology::core_count() const noexcept { return static_cast<unsigned>(p_->cores.size()); }
bool topology::this_system() const noexcept { return p_->this_system; }
const hardware_facts& topology::facts() const noexcept { return p_->facts; }
const std::vector<unsigned>& topology::compact_order() const noexcept { return p_->compact; }
const std::vector<unsigned>& topology::spread_order() const noexcept { return p_->spread; }

const std::vector<unsigned>& topology::order(pin_policy policy) const noexcept {
  return policy == pin_policy::spread ? p_->spread : p_->compact;
}

bool topology::contains(unsigned pu) const noexcept { return p_->pu(pu) != nullptr; }

distance_class topology::distance(unsigned pu_a, unsigned pu_b) const noexcept {
  return p_->distance(p_->pu(pu_a), p_->pu(pu_b));
}

const std::vector<pu_pair>& topology::class_pairs() const noexcept {
  std::call_once(p_->pairs_once, [this] { p_->compute_pairs(); });
  return p_->pairs;
}

std::vector<distance_class> topology::classes() const {
  std::vector<distance_class> v;
  for (const pu_pair& p : class_pairs()) v.push_back(p.cls);
  return v;
}

std::vector<unsigned> topology::placement_pus(pin_policy policy, unsigned n) const {
  const auto& ord = order(policy);
  const std::size_t k = policy == pin_policy::none ? (n >= 2 ? ord.size() : std::min<std::size_t>(n, 1))
                                                   : std::min<std::size_t>(n, ord.size());
  return {ord.begin(), ord.begin() + static_cast<std::ptrdiff_t>(std::min(k, ord.size()))};
}

std::optional<distance_class> topology::placement_classes(pin_policy policy, unsigned n) const {
  const std::vector<unsigned> used = placement_pus(policy, n);
  if (used.size() < 2) return std::nullopt;
  // Two used PUs of one core make smt; across cores the class is that of the cores' first PUs.
  std::optional<distance_class> widest;
  std::vector<unsigned> seen_core(p_->cores.size(), 0);
  std::vector<hwloc_obj_t> reps;
  for (unsigned os : used) {
    const unsigned c = p_->core_of_os[os];
    if (seen_core[c]++ == 0)
      reps.push_back(p_->cores[c][0]);
    else
      widest = distance_class::smt;
  }
  for (std::size_t i = 0; i < reps.size(); ++i)
    for (std::size_t j = i + 1; j < reps.size(); ++j) {
      const distance_class c = p_->distance(reps[i], reps[j]);
      if (!widest || c > *widest) widest = c;
      if (*widest == distance_class::numa) return widest;
    }
  return widest;
}

bool topology::bind_current_thread(unsigned os_index) const noexcept {
  // hwloc's binding functions only read the topology: safe from many threads at once. For a
  // topology that is not this system (synthetic, XML) hwloc binds nothing yet reports success.
  hwloc_obj_t pu = p_->pu(os_index);
  if (pu == nullptr || p_->topo == nullptr || !p_->this_system) return false;
  return hwloc_set_cpubind(p_->topo, pu->cpuset, HWLOC_CPUBIND_THREAD) == 0;
}

const topology& machine_topology() {
  static const topology t;
  return t;
}

unsigned nproc() {
  const unsigned n = machine_topology().pu_count();
  return n > 0 ? n : std::max(1u, std::thread::hardware_concurrency());
}

std::vector<pu_pair> representative_pairs() { return machine_topology().class_pairs(); }

bool pin_current_thread_to_pu(unsigned os_index) noexcept {
  return machine_topology().bind_current_thread(os_index);
}

bool pin_current_thread(pin_policy policy, unsigned tid) noexcept {
  if (policy == pin_policy::none) return true;
  const topology& t = machine_topology();
  const auto& ord = t.order(policy);
  if (ord.empty()) return false;
  return t.bind_current_thread(ord[tid % ord.size()]);
}

std::vector<unsigned> default_thread_sweep(unsigned nproc) {
  const unsigned n = std::max(1u, nproc);
  std::vector<unsigned> v;
  if (n <= 8) {
    for (unsigned i = 1; i <= n; ++i) v.push_back(i);
  } else {
    for (unsigned p = 1; p < n; p *= 2) v.push_back(p);
    v.push_back(n);
  }
  for (unsigned m : {2u, 4u})
    if (static_cast<unsigned long long>(m) * n <= max_trial_threads) v.push_back(m * n);
  std::erase_if(v, [](unsigned x) { return x > max_trial_threads; });
  return v;
}

}  // namespace kprim::bench
