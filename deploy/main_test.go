package deploy

import (
	"os"
	"testing"

	"github.com/trustgate/trustgate/internal/testkit"
)

// TestMain removes the images the tests built (the project's image, the
// fleet's Redis image): a test run leaves no images behind. Containers,
// networks and volumes are removed by each test's cleanup.
func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemoveImages()
	os.Exit(code)
}
