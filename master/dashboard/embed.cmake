# cmake -DIN=file -DOUT=file.cc -P embed.cmake: writes a C++ source whose
# taskq::DashboardHtml() returns the bytes of IN.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}.tmp"
  "// Generated from ${IN} by master/dashboard/embed.cmake. Do not edit.\n"
  "#include \"master/dashboard/dashboard.h\"\n"
  "namespace taskq {\nnamespace {\nconst unsigned char kBytes[] = {\n${bytes}0};\n}  // namespace\n"
  "std::string_view DashboardHtml() {\n"
  "  return {reinterpret_cast<const char*>(kBytes), sizeof kBytes - 1};\n}\n}  // namespace taskq\n")
file(RENAME "${OUT}.tmp" "${OUT}")
