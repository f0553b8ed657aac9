#include "auth/jwks.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "auth/http_fetch.h"
#include "core/clock.h"
#include "observability/json_escape.h"

namespace gatehouse::auth {
namespace {

constexpr int64_t kFetchTimeoutMs = 5000;
constexpr int64_t kKidRefreshMinMs = 10'000;
constexpr int64_t kPollMs = 200;  // how soon a kid-triggered refresh is noticed

void log_line(const std::string& text) {
  // One write per line: stderr is unbuffered and shared with the workers.
  std::string line = "gatehouse: " + text + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

bool get_document(const std::string& url_text, std::string& body, std::string& error) {
  std::string why;
  std::optional<http::HttpUrl> url = http::parse_http_url(url_text, why);
  if (!url) {
    error = url_text + ": " + why;
    return false;
  }
  http::ClientResponse resp;
  if (!http_fetch(*url, "GET", "Accept: application/json\r\n", {}, kFetchTimeoutMs, resp, why)) {
    error = why;
    return false;
  }
  if (resp.status != 200) {
    error = url_text + " answered " + std::to_string(resp.status);
    return false;
  }
  body = std::move(resp.body);
  return true;
}

}  // namespace

JwksSource::JwksSource(std::string location, bool discovery, int64_t refresh_ms)
    : location_(std::move(location)), discovery_(discovery), refresh_ms_(refresh_ms) {}

std::shared_ptr<const KeySet> JwksSource::keys() const {
  std::lock_guard lock(mu_);
  return keys_;
}

JwksRegistry::~JwksRegistry() { stop(); }

std::shared_ptr<JwksSource> JwksRegistry::source(const std::string& location, bool discovery,
                                                 int64_t refresh_ms) {
  std::lock_guard lock(mu_);
  for (auto& s : sources_) {
    if (s->location_ == location && s->discovery_ == discovery) {
      s->refresh_ms_ = std::min(s->refresh_ms_, refresh_ms);
      return s;
    }
  }
  sources_.push_back(std::make_shared<JwksSource>(location, discovery, refresh_ms));
  return sources_.back();
}

void JwksRegistry::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || sources_.empty()) return;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void JwksRegistry::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void JwksRegistry::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    std::vector<std::shared_ptr<JwksSource>> sources = sources_;
    lock.unlock();
    int64_t now = core::monotonic_ms();
    int64_t wake = now + kPollMs;
    for (auto& s : sources) {
      bool kid_refresh = s->refresh_requested_.load(std::memory_order_relaxed) &&
                         now - s->last_kid_refresh_ms_ >= kKidRefreshMinMs;
      if (kid_refresh) {
        s->last_kid_refresh_ms_ = now;
        s->refresh_requested_.store(false, std::memory_order_relaxed);
      }
      if (kid_refresh || now >= s->next_fetch_ms_) {
        fetch(*s, now);
        now = core::monotonic_ms();
      }
      wake = std::min(wake, s->next_fetch_ms_);
    }
    lock.lock();
    if (stop_) break;
    cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(wake - now, 1)));
  }
}

void JwksRegistry::fetch(JwksSource& s, int64_t now_ms) {
  s.fetches_.fetch_add(1, std::memory_order_relaxed);
  std::string error;
  std::string body;
  bool ok = true;
  if (s.discovery_ && s.jwks_url_.empty()) {
    // OpenID Connect Discovery 1.0 section 4: {issuer}/.well-known/openid-configuration.
    std::string issuer = s.location_;
    while (!issuer.empty() && issuer.back() == '/') issuer.pop_back();
    std::string doc;
    ok = get_document(issuer + "/.well-known/openid-configuration", doc, error);
    if (ok) {
      auto json = nlohmann::json::parse(doc, nullptr, false);
      if (!json.is_object() || !json.contains("jwks_uri") || !json["jwks_uri"].is_string()) {
        ok = false;
        error = "the discovery document of " + issuer + " has no jwks_uri";
      } else if (!json.contains("issuer") ||
                 (json["issuer"] != issuer && json["issuer"] != s.location_)) {
        // Section 4.3: the issuer in the document must be the one we asked.
        ok = false;
        error = "the discovery document of " + issuer + " names another issuer";
      } else {
        s.jwks_url_ = json["jwks_uri"].get<std::string>();
      }
    }
  } else if (!s.discovery_) {
    s.jwks_url_ = s.location_;
  }
  std::optional<KeySet> set;
  if (ok) ok = get_document(s.jwks_url_, body, error);
  if (ok) {
    std::vector<std::string> skipped;
    set = parse_jwks(body, &error, &skipped);
    for (const std::string& why : skipped)
      log_line("jwks " + s.jwks_url_ + ": key skipped: " + why);
    if (!set) {
      ok = false;
      error = s.jwks_url_ + ": " + error;
    } else if (set->keys.empty()) {
      ok = false;
      error = s.jwks_url_ + ": no usable key in the set";
    }
  }
  if (!ok) {
    s.failures_.fetch_add(1, std::memory_order_relaxed);
    ++s.failures_in_row_;
    // Retry soon while failing (1 s, 2 s, 4 s ... up to the refresh period);
    // the last good keys stay in use meanwhile.
    int64_t backoff =
        std::min<int64_t>(s.refresh_ms_, 1000LL << std::min(s.failures_in_row_ - 1, 5));
    s.next_fetch_ms_ = now_ms + backoff;
    if (s.discovery_) s.jwks_url_.clear();  // rediscover next time
    log_line(
        "jwks " + s.location_ + ": fetch failed (" + error + ")" +
        (s.version() == 0 ? "; no keys yet, requests get 503" : "; keeping the last good keys"));
    return;
  }
  s.failures_in_row_ = 0;
  s.next_fetch_ms_ = now_ms + s.refresh_ms_;
  s.key_count_.store(set->keys.size(), std::memory_order_relaxed);
  auto keys = std::make_shared<const KeySet>(std::move(*set));
  {
    std::lock_guard lock(s.mu_);
    s.keys_ = std::move(keys);
  }
  s.version_.fetch_add(1, std::memory_order_release);
}

void JwksRegistry::append_metrics(std::string& out) const {
  std::vector<std::shared_ptr<JwksSource>> sources;
  {
    std::lock_guard lock(mu_);
    sources = sources_;
  }
  if (sources.empty()) return;
  auto label = [](const JwksSource& s) {
    std::string l = "{source=";
    observability::append_json_string(l, s.location());
    return l + "}";
  };
  out.append("# HELP gatehouse_auth_jwks_fetches_total JWKS fetch attempts.\n");
  out.append("# TYPE gatehouse_auth_jwks_fetches_total counter\n");
  for (auto& s : sources)
    out.append("gatehouse_auth_jwks_fetches_total" + label(*s) + " " +
               std::to_string(s->fetches_.load(std::memory_order_relaxed)) + "\n");
  out.append("# HELP gatehouse_auth_jwks_fetch_failures_total JWKS fetches that failed.\n");
  out.append("# TYPE gatehouse_auth_jwks_fetch_failures_total counter\n");
  for (auto& s : sources)
    out.append("gatehouse_auth_jwks_fetch_failures_total" + label(*s) + " " +
               std::to_string(s->failures()) + "\n");
  out.append("# HELP gatehouse_auth_jwks_keys Keys in the current set (0: none fetched yet).\n");
  out.append("# TYPE gatehouse_auth_jwks_keys gauge\n");
  for (auto& s : sources)
    out.append("gatehouse_auth_jwks_keys" + label(*s) + " " +
               std::to_string(s->key_count_.load(std::memory_order_relaxed)) + "\n");
}

}  // namespace gatehouse::auth
