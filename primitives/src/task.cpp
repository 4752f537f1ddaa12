// The task_struct table (kprim/task.hpp): one record per thread slot, never freed.
#include <kprim/task.hpp>

namespace kprim::detail {
task_struct task_table[max_thread_slots];
}
