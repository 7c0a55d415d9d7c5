package shim

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"golang.org/x/net/http2/hpack"
)

// An HTTP/2 client for exactly one request on one connection (RFC 9113): the shim's one unary
// gRPC call. The standard library's client would do, but it links net/http and crypto/tls, which
// make the binary twice as large and slower to start on every CNI call (see wire.go). What a
// single request needs of the protocol is small: the preface and settings, one HEADERS frame, the
// body in DATA frames within the peer's flow-control windows, and reading back headers, data and
// trailers while answering the peer's SETTINGS and PINGs.

const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20

	settingInitialWindowSize = 0x4
	settingMaxFrameSize      = 0x5
	settingEnablePush        = 0x2

	// defaultWindow and defaultMaxFrame are the protocol's initial values.
	defaultWindow   = 65535
	defaultMaxFrame = 16384
	// receiveWindow is what the shim lets the agent send before it reads: more than any answer.
	receiveWindow = maxAnswer + 1<<16
	// maxReadFrame bounds a frame the shim accepts (it advertises no larger maximum).
	maxReadFrame = defaultMaxFrame
	// streamID is the one stream the shim opens.
	streamID = 1
)

var clientPreface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// h2Response is what came back on the stream.
type h2Response struct {
	header  map[string]string
	body    []byte
	trailer map[string]string
}

// errStreamReset is a stream the peer reset or a connection it is closing.
var errStreamReset = errors.New("antrea-agent reset the call")

// h2Conn is one connection carrying one request.
type h2Conn struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	// sendConn and sendStream are the peer's flow-control windows for what the shim sends.
	sendConn, sendStream int64
	// initialWindow is the peer's SETTINGS_INITIAL_WINDOW_SIZE; maxFrame its SETTINGS_MAX_FRAME_SIZE.
	initialWindow int64
	maxFrame      int
	dec           *hpack.Decoder
	resp          h2Response
	headersDone   bool
	done          bool
}

// roundTrip sends one POST with the given headers and body on conn and reads the answer.
func roundTrip(conn net.Conn, path string, headers [][2]string, body []byte) (*h2Response, error) {
	c := &h2Conn{conn: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn),
		sendConn: defaultWindow, sendStream: defaultWindow, initialWindow: defaultWindow, maxFrame: defaultMaxFrame}
	c.dec = hpack.NewDecoder(4096, nil)
	c.resp.header, c.resp.trailer = map[string]string{}, map[string]string{}

	// Preface and settings: no push, and a receive window larger than any answer, so that the
	// shim never has to grant more while it reads.
	_, _ = c.w.Write(clientPreface) // a bufio.Writer: its error comes back from Flush
	var settings []byte
	settings = appendSetting(settings, settingEnablePush, 0)
	settings = appendSetting(settings, settingInitialWindowSize, receiveWindow)
	c.writeFrame(frameSettings, 0, 0, settings)
	c.writeFrame(frameWindowUpdate, 0, 0, binary.BigEndian.AppendUint32(nil, receiveWindow-defaultWindow))

	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, h := range append([][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", "antrea-agent"}, {":path", path}}, headers...) {
		if err := enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]}); err != nil {
			return nil, err
		}
	}
	if block.Len() > defaultMaxFrame {
		return nil, errors.New("request headers larger than one HTTP/2 frame")
	}
	flags := byte(flagEndHeaders)
	if len(body) == 0 {
		flags |= flagEndStream
	}
	c.writeFrame(frameHeaders, flags, streamID, block.Bytes())

	for len(body) > 0 {
		n := min(int64(len(body)), int64(c.maxFrame), c.sendConn, c.sendStream)
		if n <= 0 {
			// The windows are closed: flush and read until the peer opens them.
			if err := c.w.Flush(); err != nil {
				return nil, err
			}
			if err := c.readFrame(); err != nil {
				return nil, err
			}
			if c.done {
				return &c.resp, nil // answered before the whole body: its status says why
			}
			continue
		}
		flags := byte(0)
		if int(n) == len(body) {
			flags = flagEndStream
		}
		c.writeFrame(frameData, flags, streamID, body[:n])
		c.sendConn -= n
		c.sendStream -= n
		body = body[n:]
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	for !c.done {
		if err := c.readFrame(); err != nil {
			return nil, err
		}
	}
	return &c.resp, nil
}

func appendSetting(b []byte, id uint16, value uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, id)
	return binary.BigEndian.AppendUint32(b, value)
}

// writeFrame buffers one frame; errors surface at the next Flush.
func (c *h2Conn) writeFrame(typ, flags byte, stream uint32, payload []byte) {
	var h [9]byte
	h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	h[3], h[4] = typ, flags
	binary.BigEndian.PutUint32(h[5:], stream)
	// A bufio.Writer: its error comes back from Flush.
	_, _ = c.w.Write(h[:])
	_, _ = c.w.Write(payload)
}

// readFrame reads and handles one frame.
func (c *h2Conn) readFrame() error {
	typ, flags, stream, payload, err := c.nextFrame()
	if err != nil {
		return err
	}
	switch typ {
	case frameSettings:
		if flags&flagAck != 0 {
			return nil
		}
		if err := c.applySettings(payload); err != nil {
			return err
		}
		c.writeFrame(frameSettings, flagAck, 0, nil)
		return c.w.Flush()
	case framePing:
		if flags&flagAck == 0 {
			c.writeFrame(framePing, flagAck, 0, payload)
			return c.w.Flush()
		}
	case frameWindowUpdate:
		if len(payload) != 4 {
			return errors.New("malformed HTTP/2 WINDOW_UPDATE")
		}
		inc := int64(binary.BigEndian.Uint32(payload) & 0x7fffffff)
		if stream == 0 {
			c.sendConn += inc
		} else if stream == streamID {
			c.sendStream += inc
		}
	case frameRSTStream:
		if stream == streamID {
			return fmt.Errorf("%w (HTTP/2 RST_STREAM %d)", errStreamReset, errorCode(payload))
		}
	case frameGoAway:
		if len(payload) >= 8 && binary.BigEndian.Uint32(payload)&0x7fffffff < streamID {
			return fmt.Errorf("%w (HTTP/2 GOAWAY %d)", errStreamReset, binary.BigEndian.Uint32(payload[4:]))
		}
	case frameHeaders:
		if stream != streamID {
			return nil
		}
		return c.readHeaders(flags, payload)
	case frameData:
		if stream != streamID {
			return nil
		}
		data, err := unpad(flags, payload)
		if err != nil {
			return err
		}
		if len(c.resp.body)+len(data) > maxAnswer+5 {
			return fmt.Errorf("antrea-agent's answer is larger than %d bytes", maxAnswer)
		}
		c.resp.body = append(c.resp.body, data...)
		c.done = flags&flagEndStream != 0
	}
	return nil
}

func errorCode(payload []byte) uint32 {
	if len(payload) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(payload)
}

// nextFrame reads one frame.
func (c *h2Conn) nextFrame() (typ, flags byte, stream uint32, payload []byte, err error) {
	var h [9]byte
	if _, err = io.ReadFull(c.r, h[:]); err != nil {
		return 0, 0, 0, nil, err
	}
	length := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	if length > maxReadFrame {
		return 0, 0, 0, nil, fmt.Errorf("HTTP/2 frame of %d bytes, more than the %d allowed", length, maxReadFrame)
	}
	payload = make([]byte, length)
	if _, err = io.ReadFull(c.r, payload); err != nil {
		return 0, 0, 0, nil, err
	}
	return h[3], h[4], binary.BigEndian.Uint32(h[5:]) & 0x7fffffff, payload, nil
}

func (c *h2Conn) applySettings(payload []byte) error {
	if len(payload)%6 != 0 {
		return errors.New("malformed HTTP/2 SETTINGS")
	}
	for ; len(payload) > 0; payload = payload[6:] {
		id, value := binary.BigEndian.Uint16(payload), binary.BigEndian.Uint32(payload[2:])
		switch id {
		case settingInitialWindowSize:
			// A new initial size moves the stream's current window by the difference.
			c.sendStream += int64(value) - c.initialWindow
			c.initialWindow = int64(value)
		case settingMaxFrameSize:
			c.maxFrame = int(min(value, 1<<24-1))
		}
	}
	return nil
}

// readHeaders reads a header block (HEADERS and its CONTINUATIONs): the response headers first,
// the trailers last.
func (c *h2Conn) readHeaders(flags byte, payload []byte) error {
	block, err := unpad(flags, payload)
	if err != nil {
		return err
	}
	if flags&flagPriority != 0 {
		if len(block) < 5 {
			return errors.New("malformed HTTP/2 HEADERS")
		}
		block = block[5:]
	}
	end := flags&flagEndStream != 0
	for flags&flagEndHeaders == 0 {
		var typ byte
		var stream uint32
		var more []byte
		if typ, flags, stream, more, err = c.nextFrame(); err != nil {
			return err
		}
		if typ != frameContinuation || stream != streamID {
			return errors.New("HTTP/2 header block interrupted")
		}
		block = append(block, more...)
	}
	fields, err := c.dec.DecodeFull(block)
	if err != nil {
		return fmt.Errorf("decode HTTP/2 headers: %w", err)
	}
	target := c.resp.header
	if c.headersDone {
		target = c.resp.trailer
	}
	c.headersDone = true
	for _, f := range fields {
		target[f.Name] = f.Value
	}
	c.done = end
	return nil
}

func unpad(flags byte, payload []byte) ([]byte, error) {
	if flags&flagPadded == 0 {
		return payload, nil
	}
	if len(payload) < 1 || int(payload[0]) >= len(payload) {
		return nil, errors.New("malformed HTTP/2 padding")
	}
	return payload[1 : len(payload)-int(payload[0])], nil
}

// status returns the response's :status.
func (r *h2Response) status() int {
	n, _ := strconv.Atoi(r.header[":status"])
	return n
}
