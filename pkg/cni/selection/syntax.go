package selection

import (
	"fmt"
	"strings"
	"unicode"

	sigsjson "sigs.k8s.io/json"
)

// describeSyntaxError turns a JSON syntax error into a message that says where the problem is
// (line and column, and the text around it) and, for the usual mistakes, how to fix it.
func describeSyntaxError(doc string, err error) error {
	isSyntax, offset64 := sigsjson.SyntaxErrorOffset(err)
	if !isSyntax {
		return fmt.Errorf("%s: malformed JSON: %w", AnnotationKey, err)
	}
	offset := int(offset64)
	if offset > len(doc) {
		offset = len(doc)
	}
	line, column := lineColumn(doc, offset)
	msg := fmt.Sprintf("%s: malformed JSON at line %d, column %d (near `%s`): %s",
		AnnotationKey, line, column, around(doc, offset), err.Error())
	if hint := syntaxHint(doc, offset, err.Error()); hint != "" {
		msg += "; " + hint
	}
	return fmt.Errorf("%s", msg)
}

// lineColumn converts a byte offset just past the offending byte into a 1-based line and column
// of that byte.
func lineColumn(doc string, offset int) (int, int) {
	pos := offset - 1
	if pos < 0 {
		pos = 0
	}
	line, column := 1, 1
	for i := 0; i < pos && i < len(doc); i++ {
		if doc[i] == '\n' {
			line++
			column = 1
		} else {
			column++
		}
	}
	return line, column
}

// around returns up to 15 bytes either side of the offending byte, on one line.
func around(doc string, offset int) string {
	start := max(offset-16, 0)
	end := min(offset+15, len(doc))
	return strings.Join(strings.Fields(doc[start:end]), " ")
}

// syntaxHint recognises the mistakes people make writing the annotation by hand.
func syntaxHint(doc string, offset int, msg string) string {
	if strings.Contains(msg, "unexpected end of JSON input") {
		return "the text ends too early: check for a missing closing ] or }"
	}
	if offset < 1 || offset > len(doc) {
		return ""
	}
	bad := doc[offset-1]
	switch {
	case bad == '\'':
		return `use double quotes ("), not single quotes`
	case (bad == ']' || bad == '}') && strings.HasSuffix(strings.TrimRight(doc[:offset-1], " \t\r\n"), ","):
		return "remove the comma before " + string(bad)
	case isWordByte(bad):
		word := wordAt(doc, offset-1)
		if strings.Contains(msg, "object key") {
			return fmt.Sprintf("keys must be in double quotes: write %q", word)
		}
		if strings.Contains(msg, "beginning of value") && word != "" {
			return fmt.Sprintf("text values must be in double quotes: write %q", word)
		}
	}
	return ""
}

func isWordByte(b byte) bool {
	r := rune(b)
	return r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-')
}

// wordAt returns the bare word starting at i, stopping at the characters that end a JSON value.
func wordAt(doc string, i int) string {
	end := i
	for end < len(doc) && !strings.ContainsRune(",:}] \t\r\n\"", rune(doc[end])) {
		end++
	}
	return doc[i:end]
}
