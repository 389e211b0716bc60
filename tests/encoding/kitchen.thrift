// Every Thrift type, for the codec and JSON-mapping tests.
namespace py kitchen

enum Color {
  RED = 1,
  GREEN = 2,
  BLUE = 7,
}

struct Leaf {
  1: i64 n,
  2: optional binary blob,
}

struct Kitchen {
  1: bool flag,
  2: byte tiny,
  3: i16 small,
  4: i32 medium = 42,
  5: i64 big,
  6: double ratio,
  7: string text,
  8: binary blob,
  9: Color color = Color.GREEN,
  10: Leaf leaf,
  11: list<Leaf> leaves,
  12: set<string> tags,
  13: map<i32, list<binary>> buckets,
  14: map<Color, Leaf> by_color,
  15: map<string, string> labels,
  16: list<list<i32>> matrix,
  17: map<bool, double> switches,
  18: map<double, string> by_ratio,
  19: map<binary, i64> by_blob,
  20: list<Color> colors,
  21: map<string, i32> counts,
}

// Only scalar fields: what the codec's one-pass flat reader handles.
struct Flat {
  1: bool flag,
  2: byte tiny,
  3: i16 small,
  4: i32 medium = 42,
  5: i64 big,
  6: double ratio,
  7: string text,
  8: binary blob,
  9: Color color = Color.GREEN,
}

// A recursive struct, for the nesting limit.
struct Node {
  1: i32 value,
  2: list<Node> children,
}

// A map keyed by structs: valid Thrift, but with no JSON form.
struct StructKeys {
  1: map<Leaf, i32> by_leaf,
}
