package server

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/cni/cnipb"
)

// fakeHandler records the requests it gets and answers with what the test set.
type fakeHandler struct {
	mu       sync.Mutex
	requests []*Request
	errs     map[string]error
	panicOn  string
	// block, when set, makes Add wait for its context and report that it saw the cancellation.
	block     bool
	cancelled chan struct{}
}

func (h *fakeHandler) record(ctx context.Context, req *Request) error {
	h.mu.Lock()
	h.requests = append(h.requests, req)
	err := h.errs[req.Command]
	h.mu.Unlock()
	if h.panicOn == req.Command {
		panic("handler bug")
	}
	if h.block && req.Command == CommandAdd {
		<-ctx.Done()
		close(h.cancelled)
		return ctx.Err()
	}
	return err
}

func (h *fakeHandler) Add(ctx context.Context, req *Request) (types.Result, error) {
	if err := h.record(ctx, req); err != nil {
		return nil, err
	}
	return &types100.Result{CNIVersion: "1.1.0", Interfaces: []*types100.Interface{{Name: req.IfName}}}, nil
}

func (h *fakeHandler) Check(ctx context.Context, req *Request) error  { return h.record(ctx, req) }
func (h *fakeHandler) Del(ctx context.Context, req *Request) error    { return h.record(ctx, req) }
func (h *fakeHandler) GC(ctx context.Context, req *Request) error     { return h.record(ctx, req) }
func (h *fakeHandler) Status(ctx context.Context, req *Request) error { return h.record(ctx, req) }

func (h *fakeHandler) seen() []*Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Request(nil), h.requests...)
}

// shortTempDir is a temporary directory with a short path: t.TempDir embeds the test's name, which
// can make a socket path longer than a unix socket allows.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cnisrv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// startServer runs a server on a socket in a fresh directory below a temporary one.
func startServer(t *testing.T, h Handler) (*Server, string) {
	t.Helper()
	socket := filepath.Join(shortTempDir(t), "run", "antrea", "cni.sock")
	s := New(socket, h)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s, socket
}

func dial(t *testing.T, socket string) cnipb.CniClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return cnipb.NewCniClient(conn)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSocketIsRootOnly(t *testing.T) {
	_, socket := startServer(t, &fakeHandler{})
	info, err := os.Lstat(socket)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Type() != fs.ModeSocket || info.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %s, want a socket with 0600", info.Mode())
	}
	dirInfo, err := os.Stat(filepath.Dir(socket))
	if err != nil {
		t.Fatal(err)
	}
	if dirInfo.Mode().Perm() != 0o700 {
		t.Errorf("created socket directory mode = %s, want 0700", dirInfo.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(socket), ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left next to the socket: %v", leftovers)
	}
}

func TestStartReplacesOnlyStaleSockets(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string
	}{
		{
			name: "a socket nobody serves is replaced",
			prepare: func(t *testing.T, path string) {
				l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				l.SetUnlinkOnClose(false)
				_ = l.Close()
			},
		},
		{
			name: "a socket another process serves is refused",
			prepare: func(t *testing.T, path string) {
				l, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = l.Close() })
			},
			wantErr: "served by another process",
		},
		{
			name: "a regular file is refused",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "is not a socket",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(shortTempDir(t), "cni.sock")
			tt.prepare(t, path)
			before, _ := os.Lstat(path)
			s := New(path, &fakeHandler{})
			err := s.Start()
			t.Cleanup(func() { s.Stop(context.Background()) })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Start error = %v, want one containing %q", err, tt.wantErr)
				}
				if after, statErr := os.Lstat(path); statErr != nil || !os.SameFile(before, after) {
					t.Errorf("Start replaced %s although it refused to start", path)
				}
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if _, err := dial(t, path).CmdStatus(testContext(t), &cnipb.CniCmdRequest{CniVersion: "1.1.0"}); err != nil {
				t.Errorf("STATUS on the replaced socket: %v", err)
			}
		})
	}
}

func TestStopRemovesOnlyItsOwnSocket(t *testing.T) {
	t.Run("its own socket is removed", func(t *testing.T) {
		s, socket := startServer(t, &fakeHandler{})
		s.Stop(context.Background())
		if _, err := os.Lstat(socket); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket still there after Stop (stat error %v)", err)
		}
	})
	t.Run("a file that replaced it is left alone", func(t *testing.T) {
		s, socket := startServer(t, &fakeHandler{})
		if err := os.Remove(socket); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(socket, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		s.Stop(context.Background())
		if _, err := os.Lstat(socket); err != nil {
			t.Errorf("Stop removed a file it did not create: %v", err)
		}
	})
}

func TestCommandsReachTheirHandlerMethod(t *testing.T) {
	h := &fakeHandler{}
	_, socket := startServer(t, h)
	client := dial(t, socket)
	base := &cnipb.CniCmdRequest{
		ContainerId:   "c1",
		Netns:         "/var/run/netns/p1",
		Ifname:        "net1",
		Args:          "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
		Path:          "/opt/cni/bin",
		CniVersion:    "0.4.0",
		NetworkConfig: []byte(`{"cniVersion":"0.4.0","name":"n","type":"antrea"}`),
	}
	calls := []struct {
		command string
		call    func(context.Context, *cnipb.CniCmdRequest, ...grpc.CallOption) (*cnipb.CniCmdResponse, error)
	}{
		{CommandAdd, client.CmdAdd},
		{CommandCheck, client.CmdCheck},
		{CommandDel, client.CmdDel},
		{CommandGC, client.CmdGC},
		{CommandStatus, client.CmdStatus},
	}
	for i, c := range calls {
		t.Run(c.command, func(t *testing.T) {
			req := &cnipb.CniCmdRequest{
				Command: c.command, ContainerId: base.ContainerId, Netns: base.Netns, Ifname: base.Ifname,
				Args: base.Args, Path: base.Path, CniVersion: base.CniVersion, NetworkConfig: base.NetworkConfig,
			}
			resp, err := c.call(testContext(t), req)
			if err != nil {
				t.Fatalf("%s: %v", c.command, err)
			}
			if resp.GetError() != nil {
				t.Fatalf("%s answered error %v", c.command, resp.GetError())
			}
			if got := (c.command == CommandAdd); got != (len(resp.GetResult()) > 0) {
				t.Errorf("%s result = %q: want a result for ADD only", c.command, resp.GetResult())
			}
			seen := h.seen()
			if len(seen) != i+1 {
				t.Fatalf("handler saw %d requests, want %d", len(seen), i+1)
			}
			want := Request{
				Command: c.command, ContainerID: "c1", Netns: "/var/run/netns/p1", IfName: "net1",
				Args: base.Args, Path: "/opt/cni/bin", CNIVersion: "0.4.0", Config: base.NetworkConfig,
			}
			if got := *seen[i]; !reflect.DeepEqual(got, want) {
				t.Errorf("handler got %+v, want %+v", got, want)
			}
		})
	}
	t.Run("ADD result is encoded in the request's version", func(t *testing.T) {
		resp, err := client.CmdAdd(testContext(t), base)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(resp.GetResult()), `"cniVersion":"0.4.0"`) {
			t.Errorf("ADD result = %s, want cniVersion 0.4.0", resp.GetResult())
		}
	})
}

func TestFailuresTravelAsCNIErrors(t *testing.T) {
	tests := []struct {
		name     string
		handler  *fakeHandler
		command  string
		wantCode uint32
		wantMsg  string
	}{
		{
			name:     "a handler CNI error keeps its code",
			handler:  &fakeHandler{errs: map[string]error{CommandAdd: types.NewError(types.ErrInvalidNetworkConfig, "unknown network ns/vlan300", "")}},
			command:  CommandAdd,
			wantCode: 7,
			wantMsg:  "unknown network ns/vlan300",
		},
		{
			name:     "a handler panic is an internal error",
			handler:  &fakeHandler{panicOn: CommandDel},
			command:  CommandDel,
			wantCode: 999,
			wantMsg:  "antrea-agent failed internally while handling DEL",
		},
		{
			name:     "a request whose command disagrees with the method is refused",
			handler:  &fakeHandler{},
			command:  CommandDel,
			wantCode: 4,
			wantMsg:  `CNI_COMMAND "ADD" sent to the DEL method`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, socket := startServer(t, tt.handler)
			client := dial(t, socket)
			req := &cnipb.CniCmdRequest{Command: tt.command, CniVersion: "1.0.0", NetworkConfig: []byte(`{}`)}
			if tt.wantCode == 4 {
				req.Command = CommandAdd
			}
			call := map[string]func(context.Context, *cnipb.CniCmdRequest, ...grpc.CallOption) (*cnipb.CniCmdResponse, error){
				CommandAdd: client.CmdAdd, CommandDel: client.CmdDel,
			}[tt.command]
			resp, err := call(testContext(t), req)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if resp.GetError().GetCode() != tt.wantCode || resp.GetError().GetMsg() != tt.wantMsg {
				t.Errorf("error = %v, want code %d msg %q", resp.GetError(), tt.wantCode, tt.wantMsg)
			}
			// The server keeps serving after the failure.
			if _, err := client.CmdStatus(testContext(t), &cnipb.CniCmdRequest{CniVersion: "1.1.0"}); err != nil {
				t.Errorf("STATUS after the failure: %v", err)
			}
		})
	}
}

func TestStopCancelsCommandsAfterTheGracePeriod(t *testing.T) {
	h := &fakeHandler{block: true, cancelled: make(chan struct{})}
	s, socket := startServer(t, h)
	client := dial(t, socket)
	callDone := make(chan error, 1)
	go func() {
		_, err := client.CmdAdd(testContext(t), &cnipb.CniCmdRequest{CniVersion: "1.0.0"})
		callDone <- err
	}()
	for len(h.seen()) == 0 {
		select {
		case err := <-callDone:
			t.Fatalf("ADD returned before reaching the handler: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	s.Stop(expired)
	select {
	case <-h.cancelled:
	case <-time.After(30 * time.Second):
		t.Fatal("the in-flight ADD was not cancelled by Stop")
	}
	if err := <-callDone; err == nil {
		t.Error("the in-flight ADD succeeded although the server was stopped")
	}
}

func TestServeStopsWhenContextEnds(t *testing.T) {
	socket := filepath.Join(shortTempDir(t), "cni.sock")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, socket, &fakeHandler{}) }()
	client := dial(t, socket)
	// Wait until the server answers: STATUS waits for the socket to appear.
	if _, err := client.CmdStatus(testContext(t), &cnipb.CniCmdRequest{CniVersion: "1.1.0"}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v after its context ended, want nil", err)
	}
	if _, err := os.Lstat(socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after Serve returned (stat error %v)", err)
	}
}

func TestStartRefusesUnusableSocketPaths(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{name: "a relative path", path: "run/cni.sock", wantErr: "not absolute"},
		{name: "a path too long for a unix socket", path: "/tmp/" + strings.Repeat("d", 120) + "/cni.sock", wantErr: "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.path, &fakeHandler{})
			err := s.Start()
			t.Cleanup(func() { s.Stop(context.Background()) })
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Start(%q) error = %v, want one containing %q", tt.path, err, tt.wantErr)
			}
		})
	}
}

// outcome is one call of the OnOutcome function.
type outcome struct {
	command string
	code    uint32
}

func TestOnOutcomeSeesEveryAnsweredCommand(t *testing.T) {
	tests := []struct {
		name    string
		handler *fakeHandler
		command string
		// sentCommand is the CNI_COMMAND inside the request; empty means the method's.
		sentCommand string
		want        outcome
	}{
		{name: "a success is code 0", handler: &fakeHandler{}, command: CommandAdd, want: outcome{CommandAdd, 0}},
		{name: "a handler CNI error keeps its code", command: CommandAdd,
			handler: &fakeHandler{errs: map[string]error{CommandAdd: types.NewError(types.ErrInvalidNetworkConfig, "unknown network", "")}},
			want:    outcome{CommandAdd, 7}},
		{name: "another handler error is 999", command: CommandDel,
			handler: &fakeHandler{errs: map[string]error{CommandDel: errors.New("ovs down")}}, want: outcome{CommandDel, 999}},
		{name: "a handler panic is 999", handler: &fakeHandler{panicOn: CommandDel}, command: CommandDel, want: outcome{CommandDel, 999}},
		{name: "a malformed request is 4", handler: &fakeHandler{}, command: CommandDel, sentCommand: CommandAdd, want: outcome{CommandDel, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			socket := filepath.Join(shortTempDir(t), "cni.sock")
			s := New(socket, tt.handler)
			var mu sync.Mutex
			var got []outcome
			s.OnOutcome(func(command string, code uint32, took time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				if took < 0 {
					t.Errorf("negative duration %v", took)
				}
				got = append(got, outcome{command, code})
			})
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Stop(context.Background()) })
			client := dial(t, socket)
			call := map[string]func(context.Context, *cnipb.CniCmdRequest, ...grpc.CallOption) (*cnipb.CniCmdResponse, error){
				CommandAdd: client.CmdAdd, CommandDel: client.CmdDel,
			}[tt.command]
			req := &cnipb.CniCmdRequest{Command: tt.sentCommand, CniVersion: "1.0.0", NetworkConfig: []byte(`{}`)}
			resp, err := call(testContext(t), req)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			// The observer runs before the answer is sent, so it has been called by now.
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("outcomes %v, want [%v]", got, tt.want)
			}
			if resp.GetError().GetCode() != tt.want.code {
				t.Errorf("the shim got code %d, the observer %v", resp.GetError().GetCode(), got)
			}
		})
	}
}

// logKeysHandler adds the network to the command's log, as the agent's handler does once it has
// parsed the configuration, and records the keys the server will log the outcome with.
type logKeysHandler struct {
	fakeHandler
	keys chan []any
}

func (h *logKeysHandler) Del(ctx context.Context, req *Request) error {
	AddLogKeys(ctx, "network", "vlan100")
	if l, ok := ctx.Value(commandLogKey{}).(*commandLog); ok {
		h.keys <- l.snapshot()
	} else {
		h.keys <- nil
	}
	return nil
}

func TestHandlerAddsToTheLogOfItsCommand(t *testing.T) {
	h := &logKeysHandler{keys: make(chan []any, 1)}
	_, socket := startServer(t, h)
	req := &cnipb.CniCmdRequest{ContainerId: "c1", Ifname: "net1", Args: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p",
		NetworkConfig: []byte(`{"name": "not-read-by-the-server"}`)}
	if _, err := dial(t, socket).CmdDel(testContext(t), req); err != nil {
		t.Fatal(err)
	}
	got := <-h.keys
	want := []any{"command", CommandDel, "pod", klog.KRef("ns", "p"), "containerID", "c1", "interface", "net1", "network", "vlan100"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("log keys = %v, want %v", got, want)
	}
	AddLogKeys(context.Background(), "network", "x") // outside a command: nothing to add to, no panic
}
