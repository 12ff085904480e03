// interval_text.hpp: which schedule texts are PostgreSQL interval literals.
//
// A schedule is an interval only in an unambiguous interval form
// (doc/cron.md, "Interval or cron"): every word is a number, a unit, a number
// with its unit ('10s', '1h30m'), a time ('00:00:10') or an ISO 8601
// duration ('PT10S'), and no number is followed by another number. No cron
// expression has that form (its first two fields are bare numbers, or contain
// * ? , / or a range), so text of cron's shape that is not an interval is
// read as cron, never handed to PostgreSQL's interval reader, which skips
// punctuation ('1% * * * *' would be one second).
#pragma once

#include <string_view>

namespace foreman::core {

// True when text is in interval form. Whether PostgreSQL accepts such a text,
// and what it means, is for interval_in to say.
bool is_interval_form(std::string_view text);

} // namespace foreman::core
