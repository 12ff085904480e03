// error.hpp: the one exception type pure C++ code throws for user-facing errors.
//
// It carries a SQLSTATE as five characters so that src/core needs no
// postgres.h; the boundary in src/pg turns it into ereport(ERROR) with that
// SQLSTATE, its message, detail and hint.
#pragma once

#include <stdexcept>
#include <string>

namespace foreman::core {

// SQLSTATEs used by the core, spelled as PostgreSQL's errcodes.txt spells them.
namespace sqlstate {
inline constexpr const char *kInvalidParameterValue = "22023";
inline constexpr const char *kInvalidDatetimeFormat = "22007";
inline constexpr const char *kDatetimeFieldOverflow = "22008";
inline constexpr const char *kSyntaxError = "42601";
inline constexpr const char *kInvalidName = "42602";
inline constexpr const char *kFeatureNotSupported = "0A000";
inline constexpr const char *kInternalError = "XX000";
} // namespace sqlstate

class Error : public std::runtime_error {
public:
	Error(const char *state, std::string message, std::string detail = {}, std::string hint = {})
	    : std::runtime_error(std::move(message)), detail_(std::move(detail)), hint_(std::move(hint))
	{
		for (int i = 0; i < 5; i++)
			state_[i] = state[i];
		state_[5] = '\0';
	}

	const char *sqlstate() const noexcept { return state_; }
	const std::string &detail() const noexcept { return detail_; }
	const std::string &hint() const noexcept { return hint_; }

private:
	char state_[6];
	std::string detail_;
	std::string hint_;
};

} // namespace foreman::core
