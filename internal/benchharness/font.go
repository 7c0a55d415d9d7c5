package benchharness

import (
	"image"
	"image/color"
	"strings"
)

// glyphs is a 5x7 bitmap font for chart labels: digits, capitals (lower case is drawn as upper
// case) and the punctuation the charts use. Each glyph is 7 rows of 5 columns, '#' set.
var glyphs = map[rune][7]string{
	'0':  {" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "},
	'1':  {"  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "},
	'2':  {" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"},
	'3':  {"#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "},
	'4':  {"   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "},
	'5':  {"#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "},
	'6':  {"  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "},
	'7':  {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "},
	'8':  {" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "},
	'9':  {" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "},
	'A':  {" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"},
	'B':  {"#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "},
	'C':  {" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "},
	'D':  {"###  ", "#  # ", "#   #", "#   #", "#   #", "#  # ", "###  "},
	'E':  {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"},
	'F':  {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "},
	'G':  {" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"},
	'H':  {"#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"},
	'I':  {" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "},
	'J':  {"  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "},
	'K':  {"#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"},
	'L':  {"#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"},
	'M':  {"#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"},
	'N':  {"#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"},
	'O':  {" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "},
	'P':  {"#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "},
	'Q':  {" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"},
	'R':  {"#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"},
	'S':  {" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "},
	'T':  {"#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "},
	'U':  {"#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "},
	'V':  {"#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "},
	'W':  {"#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "},
	'X':  {"#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"},
	'Y':  {"#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "},
	'Z':  {"#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"},
	' ':  {"     ", "     ", "     ", "     ", "     ", "     ", "     "},
	'.':  {"     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "},
	',':  {"     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "},
	':':  {"     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "},
	'-':  {"     ", "     ", "     ", "#####", "     ", "     ", "     "},
	'+':  {"     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "},
	'/':  {"     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     "},
	'%':  {"##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"},
	'(':  {"   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "},
	')':  {" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "},
	'<':  {"   # ", "  #  ", " #   ", "#    ", " #   ", "  #  ", "   # "},
	'>':  {" #   ", "  #  ", "   # ", "    #", "   # ", "  #  ", " #   "},
	'=':  {"     ", "     ", "#####", "     ", "#####", "     ", "     "},
	'_':  {"     ", "     ", "     ", "     ", "     ", "     ", "#####"},
	'[':  {" ### ", " #   ", " #   ", " #   ", " #   ", " #   ", " ### "},
	']':  {" ### ", "   # ", "   # ", "   # ", "   # ", "   # ", " ### "},
	'\'': {"  #  ", "  #  ", " #   ", "     ", "     ", "     ", "     "},
	'|':  {"  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "},
}

// glyphWidth is the advance of one character in pixels at scale 1 (5 columns and a gap).
const glyphWidth = 6

// textWidth is the width of s drawn at scale.
func textWidth(s string, scale int) int { return len([]rune(s)) * glyphWidth * scale }

// drawText draws s with its top left corner at (x, y), each font pixel a scale x scale square.
// Characters without a glyph are drawn as '?'-less blanks.
func drawText(img *image.RGBA, x, y int, s string, scale int, c color.Color) {
	for _, r := range s {
		g, ok := glyphs[r]
		if !ok {
			g, ok = glyphs[[]rune(strings.ToUpper(string(r)))[0]]
		}
		if ok {
			for row, line := range g {
				for col, px := range line {
					if px == '#' {
						fillRect(img, x+col*scale, y+row*scale, scale, scale, c)
					}
				}
			}
		}
		x += glyphWidth * scale
	}
}

// drawTextUp draws s rotated a quarter turn counter-clockwise, reading upwards from (x, y), its
// glyph tops facing left: for a vertical axis label.
func drawTextUp(img *image.RGBA, x, y int, s string, scale int, c color.Color) {
	for _, r := range s {
		g, ok := glyphs[r]
		if !ok {
			g, ok = glyphs[[]rune(strings.ToUpper(string(r)))[0]]
		}
		if ok {
			for row, line := range g {
				for col, px := range line {
					if px == '#' {
						fillRect(img, x+row*scale, y-col*scale-scale, scale, scale, c)
					}
				}
			}
		}
		y -= glyphWidth * scale
	}
}

func fillRect(img *image.RGBA, x, y, w, h int, c color.Color) {
	for j := y; j < y+h; j++ {
		for i := x; i < x+w; i++ {
			if (image.Point{i, j}).In(img.Rect) {
				img.Set(i, j, c)
			}
		}
	}
}
