// Shared by the codegen tests (codegen_test.cpp: x86-64; codegen_arch_test.cpp: arm64 with and
// without LSE, and the x86-64 side of the same operations): compile a translation unit with a
// given compiler at -O2 -S and split the listing into each kp_* function's instructions.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace kprim_test {

using listing = std::map<std::string, std::vector<std::string>>;

/// Instructions of each kp_* function: labels, directives and comments dropped (x86 `#`,
/// arm64 `//`), whitespace normalised to single spaces. Numeric local labels ("1:", from
/// inline asm) stay inside their function.
inline listing parse_listing(const std::string& asm_text) {
  listing out;
  std::istringstream in(asm_text);
  std::string line, cur;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') continue;  // #APP / #NO_APP / line markers
    if (line.rfind("//", 0) == 0) continue;         // arm64 comments and line markers
    if (!line.empty() && line[0] != '\t' && line[0] != ' ' && line[0] != '.' && line.back() == ':') {
      if (line[0] >= '0' && line[0] <= '9') continue;  // inline asm's local label
      cur = line.substr(0, line.size() - 1);
      if (cur.rfind("kp_", 0) != 0) cur.clear();
      continue;
    }
    if (cur.empty()) continue;
    std::size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '.' || line.compare(b, 2, "//") == 0) continue;
    std::string ins;
    bool space = false;
    for (char c : line.substr(b)) {
      if (c == ' ' || c == '\t') {
        space = true;
      } else {
        if (space && !ins.empty()) ins += ' ';
        space = false;
        ins += c;
      }
    }
    if (ins == "endbr64" || ins == "1:") continue;
    out[cur].push_back(ins);
  }
  return out;
}

/// Compile `tu` with `cxx` and `flags` at -O2 -S against the kprim headers; on success fill
/// `out` and return "", else return the command and its output.
inline std::string compile_listing(const std::string& cxx, const std::string& flags, const std::string& tu,
                                   listing& out) {
  char dir_tmpl[] = "/tmp/kprim-codegen-XXXXXX";
  const char* dir = mkdtemp(dir_tmpl);
  if (dir == nullptr) return "mkdtemp failed";
  const std::string src = std::string(dir) + "/tu.cpp", asm_out = std::string(dir) + "/tu.s",
                    log = std::string(dir) + "/log";
  std::ofstream(src) << tu;
  // KPRIM_CODEGEN_INCLUDE_DIR points the compile at other headers (e.g. an older commit's, to
  // see these checks fail on the code they were written against).
  const char* inc = std::getenv("KPRIM_CODEGEN_INCLUDE_DIR");
  const std::string cmd = "'" + cxx + "' -std=c++20 -O2 -S -fno-asynchronous-unwind-tables " + flags + " -I'" +
                          (inc && *inc ? inc : KPRIM_INCLUDE_DIR) + "' -o '" + asm_out + "' '" + src + "' >'" + log +
                          "' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::stringstream text, err;
  text << std::ifstream(asm_out).rdbuf();
  err << std::ifstream(log).rdbuf();
  std::remove(src.c_str());
  std::remove(asm_out.c_str());
  std::remove(log.c_str());
  rmdir(dir);
  if (rc != 0) return "compile failed (" + cmd + "):\n" + err.str();
  out = parse_listing(text.str());
  return "";
}

/// Print the listing so the test log documents the code.
inline void print_listing(const std::string& title, const listing& fns) {
  std::printf("%s:\n", title.c_str());
  for (auto& [name, ins] : fns) {
    std::printf("  %-30s", name.c_str());
    for (auto& i : ins) std::printf(" %s;", i.c_str());
    std::printf("\n");
  }
}

}  // namespace kprim_test
