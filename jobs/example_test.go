package jobs_test

import (
	"fmt"

	"github.com/lakehouse/lake/jobs"
)

func ExampleChildURI() {
	fmt.Println(jobs.ChildURI("s3://b/p?region=x", jobs.OutItemFactors))
	fmt.Println(jobs.ChildURI("./out", jobs.OutSimilarItems))
	// Output:
	// s3://b/p/item_factors?region=x
	// ./out/similar_items
}

func ExampleParseDuration() {
	d, _ := jobs.ParseDuration("1w2d")
	fmt.Println(d)
	// Output: 216h0m0s
}
