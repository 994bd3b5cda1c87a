// corelab/error.hpp — the one exception type of the library.
//
// Concept: a library error says what was wrong and what to do about it. Every
// lesson catches `corelab::Error`, prints `error: <message>` and exits 1.
// Used by every lesson.
#pragma once

#include <stdexcept>  // std::runtime_error
#include <string>     // std::string

namespace corelab {

/// Thrown by every corelab function that cannot do what it was asked.
/// The message names the problem and, where there is one, the fix.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace corelab
