// Percentiles of the log-linear latency histogram (kprim/bench/histogram.hpp).
#include <kprim/bench/histogram.hpp>

#include <algorithm>
#include <cmath>

namespace kprim::bench {

std::uint64_t latency_histogram::percentile(double q) const noexcept {
  if (total_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Rank of the sample that covers fraction q (1-based, at least the first sample).
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_))));
  std::uint64_t seen = 0;
  for (unsigned i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(upper_bound_of(i), max_);
  }
  return max_;
}

}  // namespace kprim::bench
