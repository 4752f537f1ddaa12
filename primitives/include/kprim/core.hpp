// kprim/core.hpp: the hot core in one include - compiler idioms, barriers, atomic_t and
// friends, refcount_t, list_head/hlist/llist and the cache-layout helpers.
#pragma once

#include <kprim/atomic.hpp>
#include <kprim/barrier.hpp>
#include <kprim/cache.hpp>
#include <kprim/compiler.hpp>
#include <kprim/hlist.hpp>
#include <kprim/list.hpp>
#include <kprim/llist.hpp>
#include <kprim/refcount.hpp>
