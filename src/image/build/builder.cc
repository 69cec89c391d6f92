#include "image/build/builder.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "container/rootfs_path.h"
#include "image/build/cache.h"
#include "image/build/copy.h"
#include "image/build/dockerfile.h"
#include "image/build/run_step.h"
#include "image/build/sources.h"
#include "image/build/stage.h"
#include "image/build/workroot.h"
#include "image/images.h"
#include "image/progress.h"
#include "image/user.h"
#include "image/json_fields.h"

namespace vessel::image::build {

namespace {

using Json = nlohmann::json;

constexpr const char* kScratchCreated = "1970-01-01T00:00:00Z";

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<unsigned long> parse_octal(const std::string& s) {
  if (s.empty() || s.find_first_not_of("01234567") != std::string::npos || s.size() > 6) return std::nullopt;
  return std::stoul(s, nullptr, 8);
}

Result<std::string> read_recipe(const BuildOptions& o) {
  if (!o.file.empty()) return TRYC(read_regular_file(o.file), "recipe");
  for (const char* n : {"Dockerfile", "Containerfile"}) {
    std::string p = path_join(o.context, n);
    if (path_exists(p)) return TRYC(read_regular_file(p), "recipe");
  }
  return Error(ENOENT, "no Dockerfile or Containerfile in the context " + o.context + " (use -f FILE)");
}

// A pending SIGINT, SIGTERM or SIGHUP (blocked during the build) as an error.
Status check_interrupted() {
  sigset_t stop;
  ::sigemptyset(&stop);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaddset(&stop, sig);
  timespec now{};
  int sig = ::sigtimedwait(&stop, nullptr, &now);
  if (sig > 0) return Error(EINTR, cat("interrupted by ", ::strsignal(sig)));
  return ok();
}

class Builder {
 public:
  Builder(Store& store, const BuildOptions& o) : store_(store), o_(o), cache_(store), progress_(o.progress) {
    for (auto& [k, v] : o.build_args) build_args_[k] = v;
  }

  Result<BuildResult> build() {
    auto text = TRY(read_recipe(o_));
    df_ = TRY(parse_dockerfile(text));
    context_ = TRY(SourceRoot::context(o_.context));
    total_ = df_.instructions.size();
    for (auto& in : df_.instructions) {
      TRY(check_interrupted());
      ++step_;
      progress_.line(cat("STEP ", step_, "/", total_, ": ", in.original));
      Status st = in.keyword == "FROM" ? from(in) : stages_.empty() ? global_arg(in) : instruction(stages_.back(), in);
      if (!st) return std::move(st).error().context(cat("line ", in.line, ": ", in.keyword));
      if (!o_.target.empty() && in.keyword == "FROM" && stages_.size() > 1 && stages_[stages_.size() - 2].name == lower(o_.target))
        break;  // the next stage began: the target is complete
    }
    if (stages_.empty()) return Error::invalid("the recipe has no FROM");
    Stage* final_stage = &stages_.back();
    if (!o_.target.empty()) {
      final_stage = find_stage(o_.target);
      if (!final_stage) return Error::invalid("--target " + o_.target + ": no stage of that name");
    }
    for (auto& [k, v] : build_args_)
      if (!used_args_.count(k)) std::fprintf(stderr, "vessel: warning: --build-arg %s was not used (no ARG %s)\n", k.c_str(), k.c_str());
    TRY(check_interrupted());
    return commit(*final_stage);
  }

 private:
  Lookup lookup(Stage& s) {
    return [&s](const std::string& n) { return s.lookup(n); };
  }
  Lookup global_lookup() {
    return [this](const std::string& n) -> std::optional<std::string> {
      if (auto it = global_args_.find(n); it != global_args_.end()) return it->second;
      return std::nullopt;
    };
  }

  Stage* find_stage(const std::string& ref) {
    auto n = parse_u64(ref);
    for (auto& s : stages_)
      if ((n && static_cast<uint64_t>(s.index) == *n) || (!s.name.empty() && s.name == lower(ref))) return &s;
    return nullptr;
  }

  Status check_flags(const Instruction& in, std::initializer_list<const char*> allowed) {
    for (auto& f : in.flags) {
      bool ok_flag = false;
      for (auto* a : allowed) ok_flag |= f.name == a;
      if (!ok_flag) return Error::invalid(cat("unknown flag --", f.name));
    }
    return ok();
  }
  std::optional<std::string> flag(const Instruction& in, const char* name) {
    for (auto& f : in.flags)
      if (f.name == name) return f.value;
    return std::nullopt;
  }

  // ARG NAME[=default]: the --build-arg value, else the default, else an earlier global value.
  Status declare_args(const Instruction& in, const Lookup& vars, std::map<std::string, std::string>& into) {
    for (auto& [name, default_value] : TRY(arg_values(in.args, vars, df_.escape))) {
      std::optional<std::string> value = default_value;
      if (auto it = build_args_.find(name); it != build_args_.end()) {
        value = it->second;
        used_args_.insert(name);
      } else if (!value && &into != &global_args_) {
        if (auto g = global_args_.find(name); g != global_args_.end()) value = g->second;
      }
      if (value) into[name] = *value;
    }
    return ok();
  }

  Status global_arg(const Instruction& in) {
    if (in.keyword != "ARG") return Error::invalid("only ARG may come before the first FROM");
    return declare_args(in, global_lookup(), global_args_);
  }

  Status from(const Instruction& in) {
    TRY(check_flags(in, {"platform"}));
    if (auto p = flag(in, "platform"); p && *p != "linux/amd64" && *p != "linux/x86_64")
      return Error::invalid("--platform " + *p + ": only linux/amd64 images can be built");
    auto ws = TRY(words(in.args, global_lookup(), df_.escape));
    if (ws.size() != 1 && !(ws.size() == 3 && lower(ws[1]) == "as"))
      return Error::invalid("expected FROM IMAGE [AS NAME], got \"" + in.args + "\"");
    Stage s;
    s.index = static_cast<int>(stages_.size());
    if (ws.size() == 3) {
      s.name = lower(ws[2]);
      if (find_stage(s.name)) return Error::invalid("a stage named \"" + ws[2] + "\" already exists");
    }
    const std::string& base = ws[0];
    if (lower(base) == "scratch") {
      s.created = kScratchCreated;
      s.config = {{"architecture", "amd64"}, {"os", "linux"}, {"config", Json::object()}};
      s.key = sha256("FROM scratch");
    } else if (Stage* prev = find_stage(base); prev && !parse_u64(base)) {
      std::string name = s.name;
      int index = s.index;
      s = *prev;
      s.name = name;
      s.index = index;
      s.args.clear();
      s.key = step_key(prev->key, "FROM stage");
    } else {
      auto info = image_of(base);
      if (!info) return std::move(info).error();
      s.layers = info->manifest.layers;
      s.diff_ids = info->config.diff_ids;
      s.config = Json::parse(TRY(store_.read_blob(info->manifest.config.digest)), nullptr, false);
      if (!s.config.is_object()) return Error::invalid("base image " + base + ": config is not a JSON object");
      s.created = string_field(s.config, "created", kScratchCreated);
      cover_layers_with_history(s);
      s.key = sha256("FROM " + info->digest.str());
    }
    stages_.push_back(std::move(s));
    cmd_set_ = false;
    return ok();
  }

  // The history has an entry for each layer (OCI image-spec); an imported rootfs has none.
  static void cover_layers_with_history(Stage& s) {
    if (!s.config.contains("history") || !s.config["history"].is_array()) s.config["history"] = Json::array();
    size_t with_layer = 0;
    for (auto& h : s.config["history"]) with_layer += h.is_object() && !bool_field(h, "empty_layer");
    Json missing = Json::array();
    for (size_t i = with_layer; i < s.layers.size(); ++i)
      missing.push_back({{"created", s.created}, {"created_by", "vessel image import"}});
    for (auto& h : s.config["history"]) missing.push_back(h);
    s.config["history"] = missing;
  }

  Result<ImageInfo> image_of(const std::string& ref) {
    auto info = inspect_image(store_, ref);
    if (!info) return std::move(info).error().context("image \"" + ref + "\" (import it with `vessel image import` first)");
    return info;
  }

  Status instruction(Stage& s, const Instruction& in) {
    const std::string& k = in.keyword;
    if (k == "RUN") return run(s, in);
    if (k == "COPY" || k == "ADD") return copy(s, in);
    if (k == "WORKDIR") return workdir(s, in);
    if (k == "HEALTHCHECK" || k == "ONBUILD") {
      std::fprintf(stderr, "vessel: warning: line %d: %s is not part of the OCI image format; ignored\n", in.line, k.c_str());
      return ok();
    }
    TRY(metadata(s, in));
    s.key = step_key(s.key, k + " " + s.config.dump() + Json(s.args).dump() + Json(s.shell).dump());
    s.add_history(in.original, true);
    return ok();
  }

  // The instructions that only change the config.
  Status metadata(Stage& s, const Instruction& in) {
    const std::string& k = in.keyword;
    auto vars = lookup(s);
    auto& run = s.run();
    if (k == "ARG") {
      TRY(check_flags(in, {}));
      return declare_args(in, vars, s.args);
    }
    TRY(check_flags(in, {}));
    if (k == "ENV") {
      for (auto& [key, value] : TRY(key_values(in.args, vars, true, df_.escape))) s.set_env(key, value);
    } else if (k == "LABEL") {
      for (auto& [key, value] : TRY(key_values(in.args, vars, true, df_.escape))) object_field(run, "Labels")[key] = value;
    } else if (k == "MAINTAINER") {
      s.config["author"] = in.args;
    } else if (k == "WORKDIR") {
      std::string dir = TRY(expand(in.args, vars, df_.escape));
      if (dir.empty()) return Error::invalid("WORKDIR needs a path");
      std::string base = string_field(run, "WorkingDir", "/");
      run["WorkingDir"] = clean_path(dir[0] == '/' ? dir : (base.empty() ? "/" : base) + "/" + dir);
    } else if (k == "USER") {
      std::string user = TRY(expand(in.args, vars, df_.escape));
      if (user.empty()) return Error::invalid("USER needs a user");
      run["User"] = user;
    } else if (k == "EXPOSE") {
      for (auto& p : TRY(words(in.args, vars, df_.escape))) object_field(run, "ExposedPorts")[TRY(port_key(p))] = Json::object();
    } else if (k == "VOLUME") {
      std::vector<std::string> vols = in.exec ? *in.exec : TRY(words(in.args, vars, df_.escape));
      if (vols.empty()) return Error::invalid("VOLUME needs a path");
      for (auto& v : vols) object_field(run, "Volumes")[v] = Json::object();
    } else if (k == "STOPSIGNAL") {
      run["StopSignal"] = TRY(expand(in.args, vars, df_.escape));
    } else if (k == "SHELL") {
      if (!in.exec || in.exec->empty()) return Error::invalid("SHELL needs the JSON form: SHELL [\"executable\", \"parameters\"]");
      s.shell = *in.exec;
    } else if (k == "CMD") {
      run["Cmd"] = command(s, in);
      cmd_set_ = true;
    } else if (k == "ENTRYPOINT") {
      run["Entrypoint"] = command(s, in);
      if (!cmd_set_) run.erase("Cmd");  // an inherited CMD does not survive a new ENTRYPOINT
    } else {
      return Error::invalid("unsupported instruction " + k);
    }
    return ok();
  }

  static Result<std::string> port_key(const std::string& p) {
    auto slash = p.find('/');
    std::string port = p.substr(0, slash), proto = slash == std::string::npos ? "tcp" : lower(p.substr(slash + 1));
    auto dash = port.find('-');
    for (auto& part : {port.substr(0, dash), dash == std::string::npos ? port : port.substr(dash + 1)}) {
      auto n = parse_u64(part);
      if (!n || *n == 0 || *n > 65535) return Error::invalid("EXPOSE " + p + ": not a port number");
    }
    if (proto != "tcp" && proto != "udp" && proto != "sctp") return Error::invalid("EXPOSE " + p + ": unknown protocol " + proto);
    return port + "/" + proto;
  }

  std::vector<std::string> command(const Stage& s, const Instruction& in) {
    if (in.exec) return *in.exec;
    std::vector<std::string> argv = s.shell;
    argv.push_back(in.args);
    return argv;
  }

  // Environment of a RUN: the ENV, then the ARGs that ENV does not set.
  std::vector<std::string> run_env(Stage& s) {
    auto env = s.env();
    for (auto& [k, v] : s.args) {
      bool set = false;
      for (auto& e : env) set |= starts_with(e, k + "=");
      if (!set) env.push_back(k + "=" + v);
    }
    return env;
  }

  // Takes a layer step from the cache, or runs `make` on a fresh WorkRoot and commits it.
  Status layer_step(Stage& s, const Instruction& in, const Digest& key, const std::function<Status(WorkRoot&)>& make) {
    std::optional<CacheRecord> hit;
    if (!o_.no_cache) hit = cache_.get(key);
    if (hit) {
      progress_.line("--> Using cache " + key.hex.substr(0, 12));
      ++result_.steps_cached;
    } else {
      auto root = TRY(WorkRoot::mount(store_, s.diff_ids));
      TRY(make(root));
      CacheRecord r{TRY(root.commit(store_)), now_rfc3339()};
      TRY(cache_.put(key, r));
      hit = r;
      ++result_.steps_run;
      progress_.line("--> " + r.layer.diff_id.hex.substr(0, 12));
    }
    s.add_layer(hit->layer.descriptor, hit->layer.diff_id);
    s.created = hit->created;
    s.key = key;
    s.add_history(in.original, false);
    return ok();
  }

  // WORKDIR sets the working directory and, as Docker and BuildKit do, creates it in the
  // image when its layers lack it (a layer with just that directory; no layer otherwise).
  Status workdir(Stage& s, const Instruction& in) {
    TRY(metadata(s, in));
    std::string dir = string_field(s.run(), "WorkingDir", "/");
    bool exists;
    {
      auto view = TRY(WorkRoot::mount(store_, s.diff_ids, true));
      auto fd = container::open_in_root(view.rootfs_fd(), dir, O_PATH | O_DIRECTORY);
      if (!fd && fd.error().code() != ENOENT) return std::move(fd).error().context("WORKDIR " + dir);
      exists = static_cast<bool>(fd);
    }
    if (exists) {
      s.key = step_key(s.key, "WORKDIR " + s.config.dump() + Json(s.args).dump() + Json(s.shell).dump());
      s.add_history(in.original, true);
      return ok();
    }
    Digest key = step_key(s.key, "WORKDIR mkdir " + dir + "|" + s.config.dump());
    return layer_step(s, in, key, [&](WorkRoot& root) -> Status {
      TRYC(container::mkdir_in_root(root.rootfs_fd(), dir, 0755), "WORKDIR " + dir);
      return ok();
    });
  }

  Status run(Stage& s, const Instruction& in) {
    TRY(check_flags(in, {"network"}));
    if (auto n = flag(in, "network"); n && *n != "host" && *n != "default")
      return Error::invalid("RUN --network=" + *n + ": only the host network is supported");
    RunStep step;
    step.argv = command(s, in);
    if (step.argv.empty()) return Error::invalid("RUN needs a command");
    step.env = run_env(s);
    step.cwd = string_field(s.run(), "WorkingDir", "/");
    if (step.cwd.empty()) step.cwd = "/";
    step.user = string_field(s.run(), "User");
    step.quiet = o_.quiet;
    step.runtime_root = o_.runtime_root;
    Digest key = step_key(s.key, "RUN " + Json(step.argv).dump() + Json(step.env).dump() + step.cwd + "|" + step.user);
    return layer_step(s, in, key, [&](WorkRoot& root) { return run_in(root, step); });
  }

  Status copy(Stage& s, const Instruction& in) {
    bool add = in.keyword == "ADD";
    if (add)
      TRY(check_flags(in, {"chown", "chmod", "link"}));
    else
      TRY(check_flags(in, {"from", "chown", "chmod", "link"}));
    auto vars = lookup(s);
    std::vector<std::string> ws = in.exec ? *in.exec : TRY(words(in.args, vars, df_.escape));
    if (in.exec)
      for (auto& w : ws) w = TRY(expand(w, vars, df_.escape));
    if (ws.size() < 2) return Error::invalid(in.keyword + " needs a source and a destination");
    std::string dest = ws.back();
    ws.pop_back();
    std::string workdir = string_field(s.run(), "WorkingDir", "/");
    if (dest[0] != '/') dest = (workdir.empty() ? "/" : workdir) + "/" + dest;

    // Where the files come from: the context, an earlier stage, or an image.
    std::optional<WorkRoot> from_root;
    std::optional<SourceRoot> from_src;
    std::string from_id = "context";
    if (auto f = flag(in, "from")) {
      std::string ref = TRY(expand(*f, vars, df_.escape));
      std::vector<Digest> layers;
      if (Stage* st = find_stage(ref); st && st != &s) {
        layers = st->diff_ids;
        from_id = "stage " + st->key.hex;
      } else {
        auto info = TRY(image_of(ref));
        layers = info.config.diff_ids;
        from_id = "image " + info.digest.str();
      }
      from_root.emplace(TRY(WorkRoot::mount(store_, layers, true)));
      from_src.emplace(TRY(SourceRoot::rootfs(from_root->rootfs_fd())));
    }
    const SourceRoot& src = from_src ? *from_src : context_;
    std::vector<std::string> matched;
    for (auto& pattern : ws) {
      if (pattern.find("://") != std::string::npos)
        return Error::invalid("ADD " + pattern + ": URLs are not fetched; put the file in the build context");
      for (auto& m : TRY(src.match(pattern))) matched.push_back(m);
    }
    if (matched.size() > 1 && dest.back() != '/')
      return Error::invalid(cat("with several sources (", matched.size(), ") the destination must be a directory ending in /"));

    CopyOptions co;
    co.extract_archives = add;
    std::string chown = flag(in, "chown").value_or("");
    if (auto m = flag(in, "chmod")) {
      auto mode = parse_octal(*m);
      if (!mode || *mode > 07777) return Error::invalid("--chmod=" + *m + ": not an octal mode");
      co.mode = static_cast<mode_t>(*mode);
    }
    Digest content = TRY(src.hash(matched));
    Json key_text = {{"op", in.keyword}, {"src", matched}, {"dest", dest}, {"chown", chown},
                     {"chmod", flag(in, "chmod").value_or("")}, {"from", from_id}, {"content", content.str()}};
    Digest key = step_key(s.key, key_text.dump());
    return layer_step(s, in, key, [&](WorkRoot& root) -> Status {
      if (!chown.empty()) {
        chown = TRY(expand(chown, vars, df_.escape));
        auto u = TRYC(resolve_user(root.rootfs_fd(), chown), "--chown=" + chown);
        co.uid = u.uid;
        co.gid = chown.find(':') == std::string::npos ? u.uid : u.gid;  // "--chown=user": gid = uid, as Docker does
      }
      return copy_into(src, matched, root.rootfs_fd(), dest, co);
    });
  }

  Result<BuildResult> commit(Stage& s) {
    std::string config = s.config_json();
    Manifest m;
    m.config = Descriptor{kConfigMediaType, TRY(store_.put_blob(config)), static_cast<int64_t>(config.size())};
    m.layers = s.layers;
    result_.manifest = TRY(store_.put_blob(manifest_json(m)));
    auto lock = TRY(store_.lock());
    auto idx = TRY(store_.load_index());
    std::string now = now_rfc3339();
    idx.add(result_.manifest, now);
    for (auto& t : o_.tags) {
      auto name = TRYC(normalize_name(t), "-t " + t);
      TRY(idx.tag(name, result_.manifest, now));
      result_.names.push_back(name);
    }
    TRY(store_.save_index(idx));
    return result_;
  }

  Store& store_;
  const BuildOptions& o_;
  BuildCache cache_;
  Progress progress_;
  Dockerfile df_;
  SourceRoot context_;
  std::vector<Stage> stages_;
  std::map<std::string, std::string> build_args_, global_args_;
  std::set<std::string> used_args_;
  bool cmd_set_ = false;
  size_t step_ = 0, total_ = 0;
  BuildResult result_;
};

}  // namespace

Result<BuildResult> build_image(Store& store, const BuildOptions& o) {
  for (auto& t : o.tags) TRYC(normalize_name(t), "-t " + t);
  auto gc = TRY(store.gc_lock(false));  // no prune while layers exist that no image names yet
  // The steps' overlay mounts live in a mount namespace of our own: a build that is killed
  // leaves none on the host (the namespace goes with the last process in it).
  if (::unshare(CLONE_NEWNS) < 0) return Error::from_errno("unshare a mount namespace for the build");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) < 0) return Error::from_errno("make the build's mounts private");
  // Ctrl-C, SIGTERM and SIGHUP end the build between steps, after cleaning up (see check_interrupted);
  // a RUN in progress gets them from the terminal itself (run_in unblocks them in its child).
  sigset_t stop, old;
  ::sigemptyset(&stop);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaddset(&stop, sig);
  ::sigprocmask(SIG_BLOCK, &stop, &old);
  ScopeExit restore([&] { ::sigprocmask(SIG_SETMASK, &old, nullptr); });
  Builder b(store, o);
  return b.build();
}

}  // namespace vessel::image::build
