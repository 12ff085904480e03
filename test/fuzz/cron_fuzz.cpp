// cron_fuzz.cpp: libFuzzer target for CronExpr::parse and next_after.
//
// Any bytes either parse or throw core::Error with SQLSTATE 22023 (anything
// else escaping is a crash). What parses must give fire times that move
// forward, fall on whole seconds (whole minutes without a seconds field), and
// are found again from just before them: in UTC, and in a synthetic zone whose
// offset keeps jumping, so that gaps and overlaps are fuzzed without libc. An
// expression that can_fire() always fires again from an ordinary start (the
// search covers a 400-year cycle); one that cannot never does. The same bytes
// as a schedule text: a valid cron expression is read as cron, never as an
// interval, and text read as an interval has none of cron's * ? , / in it.
// Run it with scripts/fuzz.sh.
#include "core/cron.hpp"
#include "core/error.hpp"
#include "core/schedule.hpp"

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

// kOrdinary: starts within this of 1970 have fire times after them, if any.
constexpr Micros kOrdinary = 100000LL * 366 * 86400 * kMicrosPerSecond;

// check_fire_times: the first few fire times after `start` in one zone.
void
check_fire_times(const CronExpr &expr, const TimeZone &tz, Micros start)
{
	const Micros whole = expr.has_seconds() ? kMicrosPerSecond : kMicrosPerMinute;
	Micros after = start;
	for (int i = 0; i < 4; i++) {
		std::optional<Micros> next = expr.next_after(after, tz);
		bool ordinary = after > -kOrdinary && after < kOrdinary;
		require(next.has_value() == (expr.can_fire() && (ordinary || next)),
		        expr.can_fire() ? "no fire time although it can fire" : "a fire time although it cannot fire", expr,
		        after);
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

// schedule_kind: how parse_schedule_text reads text: 'i' (an interval, left
// to PostgreSQL), 'c' (cron), 'o' (another kind) or 'e' (refused, 22023).
char
schedule_kind(std::string_view text)
{
	try {
		std::optional<Schedule> schedule = parse_schedule_text(text);
		if (!schedule) {
			if (text.find_first_of("*?,/") != std::string_view::npos) {
				std::fprintf(stderr, "cron_fuzz: read as an interval: \"%.*s\"\n", static_cast<int>(text.size()),
				             text.data());
				std::abort();
			}
			return 'i';
		}
		return schedule->kind == ScheduleKind::Cron ? 'c' : 'o';
	} catch (const Error &e) {
		if (std::strcmp(e.sqlstate(), "22023") != 0)
			std::abort();
		return 'e';
	}
}

extern "C" int
LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
	std::string_view text(reinterpret_cast<const char *>(data), size);
	char kind = schedule_kind(text);
	std::optional<CronExpr> expr;
	try {
		expr = CronExpr::parse(text);
	} catch (const Error &e) {
		if (std::strcmp(e.sqlstate(), "22023") != 0)
			std::abort();
		return 0;
	}
	require(kind == 'c', "a valid cron expression is not read as cron", *expr, 0);
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
