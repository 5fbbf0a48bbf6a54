// The dashboard page (master/dashboard/index.html), embedded in the binary at
// build time (master/dashboard/embed.cmake): it works with no internet.
#ifndef TASKQ_MASTER_DASHBOARD_DASHBOARD_H_
#define TASKQ_MASTER_DASHBOARD_DASHBOARD_H_

#include <string_view>

namespace taskq {

std::string_view DashboardHtml();

}  // namespace taskq

#endif  // TASKQ_MASTER_DASHBOARD_DASHBOARD_H_
