// Progress of long image operations (import, export, build): shown on stderr
// when it is a terminal, silent otherwise (scripts, CI, pipes).
#pragma once

#include <string>

namespace vessel::image {

class Progress {
 public:
  // Enabled when stderr is a terminal (or `force` is set).
  explicit Progress(bool force = false);
  bool enabled() const { return enabled_; }
  // A line that stays ("STEP 2/5: RUN make").
  void line(const std::string& s);
  // A line that the next status() or line() replaces ("Copying blob 1a2b… 12.0 MiB").
  void status(const std::string& s);
  // Ends a status line (keeps it on screen).
  void done();

 private:
  bool enabled_;
  bool open_status_ = false;
};

// "12.3 MiB" style sizes.
std::string human_size(long long bytes);

}  // namespace vessel::image
