package testenv

import "go.uber.org/goleak"

// LeakOptions are the goroutines goleak may find when a package's tests end
// that are not ours to stop:
//   - fasthttp (under Fiber) keeps one cleaner goroutine per stopped server
//     asleep for up to ten seconds after Shutdown before it sees the stop;
//   - fasthttp starts one process-wide goroutine that refreshes the Date
//     header every second and never ends.
//
// Use it as goleak.VerifyTestMain(m, testenv.LeakOptions()...).
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	}
}
