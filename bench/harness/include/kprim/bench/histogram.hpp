// kprim/bench/histogram.hpp: log-linear latency histogram for sampled acquire latencies.
// Fixed memory (no allocation while recording), mergeable; not for values above 2^40 ns.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace kprim::bench {

/// latency_histogram - counts of nanosecond values in log-linear buckets: values below 16
/// are exact; above, each power of two [2^e, 2^(e+1)) is split into 16 equal sub-buckets,
/// so a bucket's width is at most 1/16 of its lower bound (relative error < 6.25%).
/// Not thread-safe: one histogram per thread, merged after the trial.
class latency_histogram {
 public:
  static constexpr unsigned sub_bits = 4;
  static constexpr unsigned sub_count = 1u << sub_bits;  // 16 sub-buckets per power of two
  static constexpr unsigned max_exp = 40;                // values >= 2^40 ns clamp to the top
  static constexpr unsigned bucket_count = (max_exp - sub_bits + 1) * sub_count;

  /// record() - count one value. O(1), no allocation. Values past 2^40 go to the top bucket.
  void record(std::uint64_t ns) noexcept {
    ++counts_[index_of(ns)];
    ++total_;
    if (ns > max_) max_ = ns;
  }

  /// merge() - add another histogram's counts into this one.
  void merge(const latency_histogram& o) noexcept {
    for (unsigned i = 0; i < bucket_count; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    if (o.max_ > max_) max_ = o.max_;
  }

  /// percentile() - smallest bucket upper bound covering fraction q (0 < q <= 1) of the
  /// samples, capped at the exact maximum; 0 when empty.
  [[nodiscard]] std::uint64_t percentile(double q) const noexcept;

  [[nodiscard]] std::uint64_t count() const noexcept { return total_; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }

  /// index_of() / upper_bound_of() - the bucket mapping (exposed for tests).
  static constexpr unsigned index_of(std::uint64_t ns) noexcept {
    if (ns < sub_count) return static_cast<unsigned>(ns);
    unsigned e = 63u - static_cast<unsigned>(std::countl_zero(ns));  // 2^e <= ns
    if (e >= max_exp) return bucket_count - 1;
    unsigned sub = static_cast<unsigned>((ns >> (e - sub_bits)) & (sub_count - 1));
    return (e - sub_bits + 1) * sub_count + sub;
  }
  static constexpr std::uint64_t upper_bound_of(unsigned idx) noexcept {
    if (idx < sub_count) return idx;
    unsigned e = idx / sub_count + sub_bits - 1;
    std::uint64_t sub = idx % sub_count;
    std::uint64_t width = std::uint64_t{1} << (e - sub_bits);
    return (std::uint64_t{1} << e) + (sub + 1) * width - 1;
  }

 private:
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace kprim::bench
