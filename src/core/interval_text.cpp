// interval_text.cpp: the interval form of a schedule text, word by word.
//
// Only the shape is checked here, with PostgreSQL's own unit words (datetime.c,
// deltatktbl); interval_in decides what an interval-form text means, or
// refuses it.
#include "core/pure.hpp"

#include "core/interval_text.hpp"
#include "core/ascii.hpp"

#include <algorithm>
#include <iterator>
#include <vector>

namespace foreman::core {

namespace {

// PostgreSQL's interval units, as its deltatktbl lists them (without "@" and
// the "timezone" units, which no duration uses).
constexpr std::string_view kUnits[] = {
    "ago",   "c",      "cent",       "centuries", "century",   "d",          "day",        "days",
    "dec",   "decade", "decades",    "decs",      "h",         "hour",       "hours",      "hr",
    "hrs",   "m",      "microsecon", "mil",       "millennia", "millennium", "millisecon", "mils",
    "min",   "mins",   "minute",     "minutes",   "mon",       "mons",       "month",      "months",
    "ms",    "msec",   "msecond",    "mseconds",  "msecs",     "qtr",        "quarter",    "s",
    "sec",   "second", "seconds",    "secs",      "us",        "usec",       "usecond",    "useconds",
    "usecs", "w",      "week",       "weeks",     "y",         "year",       "years",      "yr",
    "yrs"};

// PostgreSQL compares unit words on their first 10 characters (TOKMAXLEN):
// 'microseconds' is "microsecon".
constexpr std::size_t kUnitChars = 10;

enum class WordKind {
	Number,   // 12, -1, 1.5, .5: a count with its unit in the next word, or seconds
	Interval, // a unit, a number with its units, a time or an ISO 8601 duration
	Other,
};

// is_unit: letters that PostgreSQL reads as an interval unit, in any case.
bool
is_unit(std::string_view letters)
{
	if (letters.empty())
		return false;
	std::string word = ascii::lower(letters.substr(0, std::min(letters.size(), kUnitChars)));
	return std::find(std::begin(kUnits), std::end(kUnits), word) != std::end(kUnits);
}

// number_end: where a decimal number (digits, at most one '.', at least one
// digit) that starts at i ends; i itself when there is none.
std::size_t
number_end(std::string_view w, std::size_t i)
{
	std::size_t j = i;
	bool digits = false, point = false;
	for (; j < w.size(); j++) {
		if (ascii::is_digit(w[j]))
			digits = true;
		else if (w[j] == '.' && !point)
			point = true;
		else
			break;
	}
	return digits ? j : i;
}

// is_time: h:mm, h:mm:ss or h:mm:ss.frac.
bool
is_time(std::string_view w)
{
	int colons = 0;
	bool digit_before = false, point = false;
	for (char c : w) {
		if (ascii::is_digit(c)) {
			digit_before = true;
		} else if (c == ':' && digit_before && !point && colons < 2) {
			colons++;
			digit_before = false;
		} else if (c == '.' && digit_before && colons > 0 && !point) {
			point = true;
		} else {
			return false;
		}
	}
	return colons > 0 && (digit_before || point);
}

// is_iso_duration: P followed by digits, '.', '-', ':' and the designators
// Y M W D T H S (ISO 8601's format with designators, and its alternative format).
bool
is_iso_duration(std::string_view w)
{
	if (w.size() < 2 || ascii::to_lower(w[0]) != 'p')
		return false;
	return std::all_of(w.begin() + 1, w.end(), [](char c) {
		char l = ascii::to_lower(c);
		return ascii::is_digit(c) || c == '.' || c == '-' || c == ':' ||
		       std::string_view("ymwdths").find(l) != std::string_view::npos;
	});
}

// is_quantity: numbers each followed by a unit, written together ('10s', '1h30m').
bool
is_quantity(std::string_view w)
{
	std::size_t i = 0;
	while (i < w.size()) {
		std::size_t j = number_end(w, i);
		if (j == i)
			return false;
		std::size_t k = j;
		while (k < w.size() && ascii::is_alpha(w[k]))
			k++;
		if (!is_unit(w.substr(j, k - j)))
			return false;
		i = k;
	}
	return !w.empty();
}

// classify: what one word of a schedule text can be in an interval.
WordKind
classify(std::string_view word)
{
	std::string_view w = word;
	if (w.front() == '+' || w.front() == '-')
		w.remove_prefix(1);
	if (w.empty())
		return WordKind::Other;
	if (number_end(w, 0) == w.size())
		return WordKind::Number;
	if (is_time(w) || is_iso_duration(w) || is_quantity(w))
		return WordKind::Interval;
	return w.size() == word.size() && is_unit(w) && std::all_of(w.begin(), w.end(), ascii::is_alpha)
	           ? WordKind::Interval
	           : WordKind::Other;
}

} // namespace

bool
is_interval_form(std::string_view text)
{
	std::vector<std::string_view> words = ascii::words(text);
	if (words.empty())
		return false;
	WordKind previous = WordKind::Other;
	for (std::string_view w : words) {
		WordKind kind = classify(w);
		if (kind == WordKind::Other)
			return false;
		// Two counts in a row: '1 2 3 4 5' is cron (and no interval).
		if (kind == WordKind::Number && previous == WordKind::Number)
			return false;
		previous = kind;
	}
	return true;
}

} // namespace foreman::core
