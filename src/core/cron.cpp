// cron.cpp: placeholder until the cron parser lands (issue 3).
#include "core/pure.hpp"

#include "core/cron.hpp"
#include "core/error.hpp"

namespace foreman::core {

CronExpr
CronExpr::parse(std::string_view text)
{
	throw Error(sqlstate::kFeatureNotSupported, "cron schedules are not supported yet",
	            std::string("schedule: ") + std::string(text), "Use an interval such as '10 seconds'.");
}

std::optional<Micros>
CronExpr::next_after(Micros, const TimeZone &) const
{
	return std::nullopt;
}

} // namespace foreman::core
