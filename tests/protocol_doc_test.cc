// docs/PROTOCOL.md against proto/message_schema.h, both ways: every message
// of section 5 and every item layout of section 6 has the fields (names,
// order, types, defaults, required or optional) that the codec reads and
// writes, and nothing more. A field added to the schema and not to the
// document, or to the document and not to the schema, fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "proto/message_codec.h"
#include "proto/message_schema.h"

#ifndef TASKQ_SOURCE_DIR
#error "TASKQ_SOURCE_DIR must name the source tree"
#endif

namespace taskq::schema {
namespace {

// --- the schema, as the document writes it ------------------------------------

struct FieldDoc {
  std::string key, type, default_text;
  bool written_when_set = false;
  std::string element_map;  // for an array of maps: `{"key": type, ...}`
};
struct ElementDoc {
  std::string name, type;
  bool optional = false;
  std::string option_key;  // put item options: the one known key
};
struct ItemDoc {
  std::vector<ElementDoc> elements;
  uint32_t min = 0;
};

template <class T>
concept VectorOfItems = IsVector<T>::value && Positional<typename T::value_type>;
template <class T>
concept VectorOfMaps = IsVector<T>::value && Keyed<typename T::value_type>;

std::string Plural(std::string s) {
  if (s.back() == 'y') return s.substr(0, s.size() - 1) + "ies";
  return s + "s";
}

template <class T>
std::string ScalarType(std::size_t max) {
  if constexpr (std::is_same_v<T, uint64_t>) return "uint64";
  if constexpr (std::is_same_v<T, uint32_t>) return "uint32";
  if constexpr (std::is_same_v<T, bool>) return "bool";
  if constexpr (std::is_same_v<T, std::string_view>) return "str (" + std::to_string(max) + ")";
  return "?";
}

template <class T>
std::string ArrayElementType() {
  if constexpr (Positional<T>) return Plural(Schema<T>::kItem);
  if constexpr (Keyed<T>) return "maps";
  if constexpr (std::is_same_v<T, std::pair<uint64_t, uint64_t>>) return "[uint64, uint64]";
  return ScalarType<T>(kMaxNameBytes);
}

template <class T>
std::string TypeText(std::size_t max) {
  if constexpr (kIsNamedUints<T>) {
    return "map str → uint64";
  } else if constexpr (IsVector<T>::value) {
    // The general limit of section 3.3 goes without saying.
    const std::string limit = max == kMaxContainer ? "" : " (≤ " + std::to_string(max) + ")";
    return "array" + limit + " of " + ArrayElementType<typename T::value_type>();
  } else {
    return ScalarType<T>(max);
  }
}

template <class M, class T>
std::string DefaultText(const Field<M, T>& f) {
  if (f.presence == kRequired) return "req.";
  static const M defaults{};
  const T& v = defaults.*f.member;
  if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
  if constexpr (std::is_integral_v<T>) return std::to_string(v);
  if constexpr (std::is_same_v<T, std::string_view>) return "\"" + std::string(v) + "\"";
  if constexpr (kIsNamedUints<T>) return v.empty() ? "{}" : "?";
  if constexpr (IsVector<T>::value) return v.empty() ? "[]" : "?";
  return "?";
}

// Stats elements are read loosely: their str has no limit of its own.
template <Keyed T>
std::string ElementMapText() {
  std::string out = "{";
  ForEach(Schema<T>::kFields, [&](const auto& f) {
    using V = typename std::remove_cvref_t<decltype(f)>::Type;
    out += (out.size() > 1 ? ", \"" : "\"") + std::string(f.key) +
           "\": " + (std::is_same_v<V, std::string_view> ? "str" : ScalarType<V>(0));
  });
  return out + "}";
}

template <Keyed M>
std::vector<FieldDoc> Fields() {
  std::vector<FieldDoc> out;
  ForEach(Schema<M>::kFields, [&](const auto& f) {
    using T = typename std::remove_cvref_t<decltype(f)>::Type;
    FieldDoc d{std::string(f.key), TypeText<T>(f.max), DefaultText(f),
               f.presence == kWrittenWhenSet, ""};
    if constexpr (VectorOfMaps<T>) d.element_map = ElementMapText<typename T::value_type>();
    out.push_back(d);
  });
  return out;
}

template <Positional T>
void CollectItem(std::map<std::string, ItemDoc>* items);

template <class E>
ElementDoc Element(const E& e, std::map<std::string, ItemDoc>* items) {
  ElementDoc d{std::string(e.name), "", E::kOptional, ""};
  if constexpr (requires { e.non_empty; }) {
    using T = typename E::Type;
    d.type = std::is_same_v<T, uint32_t> ? "uint64" : ScalarType<T>(e.max);  // uint32: read clamped
    if (e.non_empty) d.type = "str, 1–" + std::to_string(e.max) + " bytes";
  } else if constexpr (requires { e.error; }) {
    d.type = "any when ok; str (" + std::to_string(e.max) + ") when not";
  } else if constexpr (requires { e.written; }) {
    static const typename E::Owner defaults{};
    if constexpr (std::is_same_v<std::remove_cvref_t<decltype(defaults.*e.member)>, bool>)
      d.type = std::string("bool, default ") + (defaults.*e.member ? "true" : "false");
    else
      d.type = "uint64, default " + std::to_string(defaults.*e.member);  // uint32: read clamped
  } else if constexpr (requires { e.present; }) {
    using T = typename E::Item;
    d.type = std::string("nil or ") + Schema<T>::kItem;
    CollectItem<T>(items);
  } else if constexpr (requires { e.key; }) {
    d.type = "nil or map str → any";
    d.option_key = std::string(e.key);
  } else {
    d.type = "any";
  }
  return d;
}

template <Positional T>
void CollectItem(std::map<std::string, ItemDoc>* items) {
  ItemDoc& doc = (*items)[Schema<T>::kItem];
  doc.elements.clear();
  doc.min = MinElements<T>();
  ForEach(Schema<T>::kElements, [&](const auto& e) { doc.elements.push_back(Element(e, items)); });
}

struct SchemaDoc {
  std::map<std::string, std::vector<FieldDoc>> messages;  // by op
  std::map<std::string, ItemDoc> items;                   // by kItem
  std::map<std::string, std::string> item_carrier;        // kItem -> "op.key" of its batch
};

SchemaDoc DescribeSchema() {
  SchemaDoc s;
  ForEachMessage([&]<class M>(std::type_identity<M>) {
    s.messages[std::string(Schema<M>::kOp)] = Fields<M>();
    ForEach(Schema<M>::kFields, [&](const auto& f) {
      using T = typename std::remove_cvref_t<decltype(f)>::Type;
      if constexpr (VectorOfItems<T>) {
        CollectItem<typename T::value_type>(&s.items);
        s.item_carrier[Schema<typename T::value_type>::kItem] =
            std::string(Schema<M>::kOp) + "." + std::string(f.key);
      }
    });
  });
  return s;
}

// --- the document -----------------------------------------------------------------

std::vector<std::string> DocLines() {
  std::ifstream in(std::string(TASKQ_SOURCE_DIR) + "/docs/PROTOCOL.md");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string Trim(std::string s) {
  const auto b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// A cell as compared: no backticks, no cross-reference to a section.
std::string Plain(std::string s) {
  std::erase(s, '`');
  return Trim(std::regex_replace(s, std::regex(R"( \(section \d+(\.\d+)?\))"), ""));
}

std::vector<std::string> Cells(const std::string& row) {
  std::vector<std::string> cells;
  std::stringstream in(row.substr(1, row.rfind('|') - 1));
  for (std::string cell; std::getline(in, cell, '|');) cells.push_back(Trim(cell));
  return cells;
}

// A section: its heading and the lines up to the next heading.
struct Section {
  std::string heading;
  std::vector<std::string> body;
};

std::vector<Section> Sections(const std::vector<std::string>& lines) {
  std::vector<Section> out;
  for (const std::string& line : lines) {
    if (line.rfind("#", 0) == 0)
      out.push_back({line, {}});
    else if (!out.empty())
      out.back().body.push_back(line);
  }
  return out;
}

// The rows of the first table in body whose header is header.
std::vector<std::vector<std::string>> Table(const std::vector<std::string>& body,
                                            const std::string& header) {
  std::vector<std::vector<std::string>> rows;
  std::size_t i = 0;
  while (i < body.size() && body[i] != header) ++i;
  for (i += 2; i < body.size() && body[i].rfind("|", 0) == 0; ++i) rows.push_back(Cells(body[i]));
  return rows;
}

const std::string kFieldHeader = "| key | type | default | meaning |";
const std::string kElementHeader = "| # | name | type | meaning |";

// --- the checks ---------------------------------------------------------------------

void ExpectFieldsMatch(const std::vector<FieldDoc>& schema, const Section& section) {
  const auto rows = Table(section.body, kFieldHeader);
  std::vector<std::string> doc_keys, schema_keys;
  for (const auto& row : rows) doc_keys.push_back(Plain(row.at(0)));
  for (const FieldDoc& f : schema) schema_keys.push_back(f.key);
  ASSERT_EQ(doc_keys, schema_keys) << "the fields (in order) in docs/PROTOCOL.md \""
                                   << section.heading << "\" and in proto/message_schema.h differ";
  std::string text;
  for (const std::string& line : section.body) text += line + "\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const FieldDoc& f = schema[i];
    const std::string& where = f.key;
    ASSERT_GE(rows[i].size(), 4u) << where;
    EXPECT_EQ(Plain(rows[i][1]), f.type) << where << ": type";
    EXPECT_EQ(Plain(rows[i][2]), f.default_text) << where << ": default (or req.)";
    EXPECT_EQ(rows[i][3].find("writes it only when") != std::string::npos, f.written_when_set)
        << where << ": the doc says \"writes it only when\" exactly for the fields the encoder "
        << "leaves out while unset (kWrittenWhenSet)";
    if (f.element_map.empty()) continue;
    const std::string prefix = "A `" + f.key + "` element: `";
    const auto at = text.find(prefix);
    ASSERT_NE(at, std::string::npos) << where << ": no line \"" << prefix << "...\"";
    const auto begin = at + prefix.size();
    EXPECT_EQ(text.substr(begin, text.find('`', begin) - begin), f.element_map) << where;
  }
}

// Fails for each name of what in one map and not the other, and calls
// check(schema's, document's) for each name in both.
template <class S, class D, class Check>
void ExpectBothWays(const std::map<std::string, S>& schema, const std::map<std::string, D>& doc,
                    const std::string& what, Check check) {
  for (const auto& [name, d] : doc)
    EXPECT_TRUE(schema.count(name)) << "docs/PROTOCOL.md has " << what << " '" << name
                                    << "', which proto/message_schema.h does not have";
  for (const auto& [name, s] : schema) {
    SCOPED_TRACE(name);
    auto it = doc.find(name);
    if (it == doc.end())
      ADD_FAILURE() << what << " '" << name << "' is not in docs/PROTOCOL.md";
    else
      check(s, it->second);
  }
}

TEST(ProtocolDoc, EveryMessageHasTheFieldsOfTheSchema) {
  const SchemaDoc schema = DescribeSchema();
  const std::regex heading(R"(^### 5\.\d+ (\S+) \(.*\)$)");
  std::map<std::string, const Section*> documented;
  const std::vector<Section> sections = Sections(DocLines());
  for (const Section& s : sections) {
    std::smatch m;
    if (std::regex_match(s.heading, m, heading)) documented[m[1]] = &s;
  }
  ASSERT_FALSE(documented.empty()) << "no \"### 5.N op (...)\" headings in docs/PROTOCOL.md";
  ExpectBothWays(schema.messages, documented, "the message (section 5)",
                 [](const std::vector<FieldDoc>& fields, const Section* section) {
                   ExpectFieldsMatch(fields, *section);
                 });
}

// The lines that introduce an item layout: "### 6.1 Put item (in `put.items`)"
// and "**Outcome**: `[...]`". Returns the item's name, its carrier if given,
// and where its layout line is.
struct LayoutAt {
  std::string item, carrier;
  const Section* section;
  std::size_t line;  // index in section->body of the "`[...]`" line
};

std::vector<LayoutAt> Layouts(const std::vector<Section>& sections) {
  const std::regex heading(R"(^### 6\.\d+ (.+) \(in `(.+)`\)$)");
  const std::regex bold(R"(^\*\*(.+)\*\*: `\[)");
  std::vector<LayoutAt> out;
  for (const Section& s : sections) {
    std::smatch m;
    bool titled = std::regex_match(s.heading, m, heading);
    std::string item = titled ? std::string(m[1]) : "", carrier = titled ? std::string(m[2]) : "";
    for (std::size_t i = 0; i < s.body.size(); ++i) {
      if (std::regex_search(s.body[i], m, bold)) {
        out.push_back({m[1], "", &s, i});
      } else if (titled && s.body[i].rfind("`[", 0) == 0) {
        out.push_back({item, carrier, &s, i});
        titled = false;
      }
    }
  }
  for (LayoutAt& l : out) l.item[0] = static_cast<char>(std::tolower(l.item[0]));
  return out;
}

void ExpectItemMatches(const ItemDoc& item, const LayoutAt& at) {
  const std::string& line = at.section->body[at.line];
  const auto open = line.find("`[") + 2;
  std::vector<std::string> names;
  std::stringstream in(line.substr(open, line.find("]`", open) - open));
  for (std::string name; std::getline(in, name, ',');) names.push_back(Trim(name));
  std::vector<std::string> want;
  for (const ElementDoc& e : item.elements) want.push_back(e.name + (e.optional ? "?" : ""));
  EXPECT_EQ(names, want) << "the layout of a " << at.item << ": " << line;
  EXPECT_NE(line.find("at least " + std::to_string(item.min) + " elements"), std::string::npos)
      << line;

  std::vector<std::string> rest(at.section->body.begin() + static_cast<long>(at.line),
                                at.section->body.end());
  const auto rows = Table(rest, kElementHeader);
  ASSERT_EQ(rows.size(), item.elements.size()) << "the table of a " << at.item;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const ElementDoc& e = item.elements[i];
    ASSERT_GE(rows[i].size(), 4u);
    EXPECT_EQ(rows[i][0], std::to_string(i)) << at.item << "." << e.name;
    std::string name = e.name;  // value_or_error is "value / error" in a table
    if (auto o = name.find("_or_"); o != std::string::npos) name.replace(o, 4, " / ");
    EXPECT_EQ(rows[i][1], name) << at.item << " element " << i;
    EXPECT_EQ(Plain(rows[i][2]), e.type) << at.item << "." << e.name << ": type";
    if (!e.option_key.empty()) {
      EXPECT_NE(rows[i][3].find("`" + e.option_key + "` (uint32)"), std::string::npos)
          << at.item << "." << e.name << ": the option '" << e.option_key << "'";
    }
  }
}

TEST(ProtocolDoc, EveryItemLayoutHasTheElementsOfTheSchema) {
  const SchemaDoc schema = DescribeSchema();
  const std::vector<Section> sections = Sections(DocLines());
  std::map<std::string, LayoutAt> documented;
  for (const LayoutAt& l : Layouts(sections)) documented.emplace(l.item, l);
  ExpectBothWays(schema.items, documented, "the item layout (section 6)",
                 [&](const ItemDoc& item, const LayoutAt& at) {
                   if (!at.carrier.empty()) {
                     auto carrier = schema.item_carrier.find(at.item);
                     ASSERT_NE(carrier, schema.item_carrier.end()) << "no batch carries it";
                     EXPECT_EQ(at.carrier, carrier->second) << "the field that carries it";
                   }
                   ExpectItemMatches(item, at);
                 });
}

}  // namespace
}  // namespace taskq::schema
