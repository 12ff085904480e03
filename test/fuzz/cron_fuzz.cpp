// cron_fuzz.cpp: libFuzzer target for CronExpr::parse and next_after.
//
// Any bytes either parse or throw core::Error with SQLSTATE 22023 (anything
// else escaping is a crash). What parses must give fire times that move
// forward, fall on whole seconds (whole minutes without a seconds field), and
// are found again from just before them: in UTC, and in a synthetic zone whose
// offset keeps jumping, so that gaps and overlaps are fuzzed without libc.
// Run it with scripts/fuzz.sh.
#include "core/cron.hpp"
#include "core/error.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

using namespace foreman::core;

namespace {

// FlippingZone: +05:30 and -02:00 in turn, switching every 37 days: a 7.5 hour
// gap, then a 7.5 hour overlap, and so on.
class FlippingZone final : public TimeZone {
public:
	std::int64_t utc_offset(std::int64_t utc_seconds) const override
	{
		std::int64_t period = 37 * 86400;
		std::int64_t n = utc_seconds / period - (utc_seconds % period < 0 ? 1 : 0);
		return (n & 1) ? -2 * 3600 : 5 * 3600 + 1800;
	}
};

// require: a broken property is a crash, with the expression for the report.
void
require(bool ok, const char *what, const CronExpr &expr, Micros after)
{
	if (ok)
		return;
	std::fprintf(stderr, "cron_fuzz: %s for \"%s\" after %lld\n", what, expr.text().c_str(),
	             static_cast<long long>(after));
	std::abort();
}

// check_fire_times: the first few fire times after `start` in one zone.
void
check_fire_times(const CronExpr &expr, const TimeZone &tz, Micros start)
{
	const Micros whole = expr.has_seconds() ? kMicrosPerSecond : kMicrosPerMinute;
	Micros after = start;
	for (int i = 0; i < 4; i++) {
		std::optional<Micros> next = expr.next_after(after, tz);
		if (!next)
			return;
		require(*next > after, "fire time not after the instant given", expr, after);
		require(*next % kMicrosPerSecond == 0, "fire time not a whole second", expr, after);
		// In both zones offsets and transitions fall on whole minutes.
		require(*next % whole == 0, "fire time not a whole minute", expr, after);
		std::optional<Micros> again = expr.next_after(*next - 1, tz);
		require(again == next, "fire time not found again from just before it", expr, *next - 1);
		after = *next;
	}
}

} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
	std::string_view text(reinterpret_cast<const char *>(data), size);
	std::optional<CronExpr> expr;
	try {
		expr = CronExpr::parse(text);
	} catch (const Error &e) {
		if (std::strcmp(e.sqlstate(), "22023") != 0)
			std::abort();
		return 0;
	}
	// What parsed once parses again from its own text.
	CronExpr again = CronExpr::parse(expr->text());
	require(again.has_seconds() == expr->has_seconds(), "text() parses differently", *expr, 0);

	// Start instants: fixed ones, the far ends of Micros, and one from the input.
	std::uint64_t hash = 14695981039346656037ULL;
	for (std::size_t i = 0; i < size; i++)
		hash = (hash ^ data[i]) * 1099511628211ULL;
	const Micros starts[] = {
	    0,
	    978307200LL * kMicrosPerSecond + 123456, // 2001-01-01 00:00:00.123456
	    -1,
	    std::numeric_limits<Micros>::min(),
	    std::numeric_limits<Micros>::max() - 400LL * 366 * 86400 * kMicrosPerSecond,
	    std::numeric_limits<Micros>::max() - 1,
	    static_cast<Micros>(hash % (8000ULL * 366 * 86400 * kMicrosPerSecond)) -
	        2000LL * 366 * 86400 * kMicrosPerSecond,
	};
	const UtcZone utc;
	const FlippingZone flipping;
	for (Micros start : starts) {
		check_fire_times(*expr, utc, start);
		check_fire_times(*expr, flipping, start);
	}
	return 0;
}
