module github.com/lakehouse/lake/integration

go 1.26

replace github.com/lakehouse/lake => ../
