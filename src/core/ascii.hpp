// ascii.hpp: reading schedule text the same way whatever the server's locale.
//
// Cron fields and interval words are split and compared as ASCII only, so
// that LC_CTYPE cannot change what a schedule means; user text quoted in a
// message is cut at a UTF-8 character boundary, so that the server can still
// convert the message to the client's encoding.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace foreman::core::ascii {

// How much of a user's text an error message repeats.
inline constexpr std::size_t kShownBytes = 120;

// is_space: ASCII whitespace (space, \t \n \v \f \r).
inline bool
is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

inline bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

inline bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

inline char
to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// lower: an ASCII lower-case copy.
inline std::string
lower(std::string_view s)
{
	std::string out(s);
	for (char &c : out)
		c = to_lower(c);
	return out;
}

// trim: s without leading and trailing whitespace.
inline std::string_view
trim(std::string_view s)
{
	while (!s.empty() && is_space(s.front()))
		s.remove_prefix(1);
	while (!s.empty() && is_space(s.back()))
		s.remove_suffix(1);
	return s;
}

// words: the whitespace-separated words of s (cron's fields).
inline std::vector<std::string_view>
words(std::string_view s)
{
	std::vector<std::string_view> out;
	std::size_t i = 0;
	while (i < s.size()) {
		if (is_space(s[i])) {
			i++;
			continue;
		}
		std::size_t start = i;
		while (i < s.size() && !is_space(s[i]))
			i++;
		out.push_back(s.substr(start, i - start));
	}
	return out;
}

// shown: s cut to a length fit for a message, never inside a UTF-8 sequence.
inline std::string
shown(std::string_view s)
{
	if (s.size() <= kShownBytes)
		return std::string(s);
	std::size_t n = kShownBytes;
	while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
		n--;
	return std::string(s.substr(0, n)) + "...";
}

} // namespace foreman::core::ascii
