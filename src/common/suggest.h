// "Did you mean …?": the closest known word to a misspelt one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vessel {

// Optimal string alignment distance: insertions, deletions, substitutions and
// transpositions of two adjacent characters each cost 1 ("strat" -> "start" is 1).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be what the user
// meant: at most 1 edit for words of up to 4 characters, 2 up to 8, 3 beyond;
// or `word` is a prefix of exactly one candidate ("upd" -> "update").
// Ties go to the earlier candidate. "" when nothing is close.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace vessel
