// kprim/detail/scoped_guard.hpp: the RAII guard behind spin_guard and mutex_guard (the kernel's
// guard(spinlock)/guard(mutex) of linux/cleanup.h). Any Lockable works; std::lock_guard too.
#pragma once

namespace kprim::detail {

template <class L>
class [[nodiscard]] scoped_guard {
 public:
  explicit scoped_guard(L& lock) noexcept : lock_(lock) { lock_.lock(); }
  ~scoped_guard() { lock_.unlock(); }
  scoped_guard(const scoped_guard&) = delete;
  scoped_guard& operator=(const scoped_guard&) = delete;

 private:
  L& lock_;
};

}  // namespace kprim::detail
